/*
 * The reader's workstation (GET /crf): render the CRF with LHC-Forms, pre-filled for a patient by
 * $populate, show the live assessment as the reader types, sign and submit; "Validate" posts the
 * form to $validate and lists the OperationOutcome.
 *
 * Plain JavaScript (no build step), loaded after the LHC-Forms scripts. It talks to its own
 * origin, and to the configured authorization server's token endpoint when access control is on
 * (SMART App Launch: authorization code with PKCE; the authorize step is a page navigation).
 * The URLs come from data- attributes that the server wrote into the page.
 *
 * Query: ?patient=<id>&stream=<reader stream>, or an EHR launch ?launch=<token>&iss=<fhir base>;
 * the authorization server redirects back with ?code=&state=.
 *
 * The state is exposed as attributes (waiting for it needs no script evaluation, which the
 * page's CSP forbids) and globals:
 *   #crf[data-form]        "loading" | "ready" | "error" | "signed-out" (a patient's form waits
 *                          for the sign-in);  window.formReady, window.formError;
 *   #crf[data-auth]        "pending" | "open" | "signed-in" | "signed-out" | "error";
 *   #crf[data-assessment]  "none" | "pending" | "done" | "failed" (with data-assessed = the count);
 *   #crf[data-submission]  "none" | "pending" | "stored" | "queued" | "delivered" | "failed";
 *                          (a 202 is "queued" while its status says so, with data-delivery-attempts,
 *                          then "delivered" or "failed");
 *   #crf[data-validation]  "pending" | "valid" | "invalid" | "failed" after "Validate".
 * The token is kept in sessionStorage (never localStorage), so it ends with the tab.
 */
(function () {
  'use strict';

  var FHIR_JSON = 'application/fhir+json';
  /** LHC-Forms' own meta.profile for R4 (not a published profile) and its version tag. */
  var LFORMS_PROFILE_PREFIX = 'http://hl7.org/fhir/4.0/StructureDefinition/';
  var LFORMS_TAG_CODE = /^lformsVersion:/;
  var TOKEN_KEY = 'fhirnet.crf.token';
  var SIGN_IN_KEY = 'fhirnet.crf.signin';
  var DRAFT_KEY = 'fhirnet.crf.draft';
  var ASSESS_DELAY_MS = 400;
  /** Polling a queued submission's status: its Retry-After, within these bounds (ms). */
  var STATUS_DEFAULT_MS = 3000;
  var STATUS_MIN_MS = 1000;
  var STATUS_MAX_MS = 30000;
  /** The link relation of a delivered form's DiagnosticReport in its status (fhir_bundles.py). */
  var REPORT_RELATION = 'https://fhirnet.dev/fhir/link-relation/diagnostic-report';

  var root = document.getElementById('crf');
  var container = document.getElementById('formContainer');
  var formStatus = document.getElementById('formStatus');
  var populateIssues = document.getElementById('populateIssues');
  var patientInput = document.getElementById('patient');
  var streamInput = document.getElementById('stream');
  var openButton = document.getElementById('openButton');
  var signInButton = document.getElementById('signInButton');
  var signInStatus = document.getElementById('signInStatus');
  var timelineLink = document.getElementById('timelineLink');
  var readerInput = document.getElementById('reader');
  var submitButton = document.getElementById('submitButton');
  var submitStatus = document.getElementById('submitStatus');
  var submitLinks = document.getElementById('submitLinks');
  var submitIssues = document.getElementById('submitIssues');
  var subjectInput = document.getElementById('subject');
  var validateButton = document.getElementById('validateButton');
  var validateStatus = document.getElementById('validateStatus');
  var issueList = document.getElementById('issues');
  var sentDetails = document.getElementById('sentDetails');
  var sentResponse = document.getElementById('sentResponse');

  var query = new URLSearchParams(window.location.search);
  var config = null;
  /** {access_token, patient, fhirUser, expires_at} once signed in. */
  var session = null;
  var patient = query.get('patient') || '';
  var stream = query.get('stream') || '';
  var assessTimer = null;
  var lastAssessed = null;
  var assessedCount = 0;
  /**
   * The form's business identifier, made once per opened form: fhirnet keys the results on it,
   * so a second "Sign and submit" of the same form amends it instead of adding an exam.
   */
  var SUBMISSION_SYSTEM = 'https://fhirnet.dev/fhir/sid/crf-submission';
  var formIdentifier = null;
  var stored = false;
  /** Whether the form on screen is the patient's (pre-filled, or resumed), not a blank one. */
  var patientsForm = false;
  /** The queued submission being followed: {url, timer, controller}; null when none. */
  var following = null;

  // --- small helpers ---------------------------------------------------------------------------

  function showError(element, message) {
    element.textContent = message;
    element.classList.add('crf-error');
  }

  function clearError(element, message) {
    element.textContent = message || '';
    element.classList.remove('crf-error');
  }

  function formFailed(message) {
    window.formError = message;
    root.dataset.form = 'error';
    showError(formStatus, 'The form could not be rendered: ' + message);
  }

  /** Text of a category, reason or coding as the assessment may give it. */
  function label(value) {
    if (value === null || value === undefined) return '';
    if (typeof value === 'string' || typeof value === 'number') return String(value);
    if (Array.isArray(value)) return value.map(label).join(', ');
    return value.display || value.text || value.message || value.label || value.code ||
      (value.coding ? label(value.coding[0]) : JSON.stringify(value));
  }

  function millimetres(value) {
    return (value === null || value === undefined) ? '—' : value + ' mm';
  }

  function percent(value) {
    if (value === null || value === undefined) return '—';
    var rounded = Math.round(Number(value) * 10) / 10;
    return (rounded > 0 ? '+' : '') + rounded + ' %';
  }

  function listInto(element, values) {
    element.replaceChildren.apply(element, (values || []).map(function (value) {
      var item = document.createElement('li');
      item.textContent = label(value);
      return item;
    }));
  }

  function headers(extra) {
    var all = Object.assign({ Accept: FHIR_JSON }, extra || {});
    if (session && session.access_token) all.Authorization = 'Bearer ' + session.access_token;
    return all;
  }

  function base64url(bytes) {
    var text = '';
    new Uint8Array(bytes).forEach(function (b) { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomString() {
    var bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    return base64url(bytes);
  }

  /** The claims of a JWT, unverified: the page only reads its own user's fhirUser and nonce. */
  function claims(jwt) {
    try {
      var part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part + '==='.slice((part.length + 3) % 4)));
    } catch (error) {
      return {};
    }
  }

  function redirectUri() {
    return window.location.origin + root.dataset.crfUrl;
  }

  // --- signing in (SMART App Launch, authorization code + PKCE) ---------------------------------

  function loadConfig() {
    return fetch(root.dataset.configUrl, { headers: { Accept: 'application/json' } })
      .then(function (response) {
        if (!response.ok) throw new Error('GET ' + root.dataset.configUrl + ' answered ' + response.status);
        return response.json();
      });
  }

  function storedSession() {
    try {
      var stored = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null');
      if (stored && stored.expires_at && stored.expires_at < Date.now()) return null;
      return stored;
    } catch (error) {
      return null;
    }
  }

  /** Go to the authorization server; back at /crf with ?code=&state=. */
  function signIn(launch) {
    if (root.dataset.form === 'ready' && patient && patientsForm) {
      // Signing in again leaves the page: keep what was typed, for this tab only.
      try {
        sessionStorage.setItem(DRAFT_KEY, JSON.stringify({
          patient: patient, stream: stream, response: questionnaireResponse()
        }));
      } catch (error) { /* nothing typed worth keeping */ }
    }
    var verifier = randomString();
    var state = randomString();
    var nonce = randomString();
    sessionStorage.setItem(SIGN_IN_KEY, JSON.stringify({
      verifier: verifier, state: state, nonce: nonce, patient: patient, stream: stream
    }));
    return crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))
      .then(function (digest) {
        var parameters = new URLSearchParams({
          response_type: 'code',
          client_id: config.client_id,
          redirect_uri: redirectUri(),
          scope: config.scope,
          state: state,
          nonce: nonce,
          aud: config.fhir_base,
          code_challenge: base64url(digest),
          code_challenge_method: 'S256'
        });
        if (launch) parameters.set('launch', launch);
        window.location.assign(config.authorize_url + '?' + parameters.toString());
      });
  }

  /** Back from the authorization server: check state, exchange the code with the verifier. */
  function finishSignIn(code, state) {
    var pending = JSON.parse(sessionStorage.getItem(SIGN_IN_KEY) || 'null');
    sessionStorage.removeItem(SIGN_IN_KEY);
    if (!pending || pending.state !== state) {
      return Promise.reject(new Error('the sign-in answer does not belong to this page (state)'));
    }
    var body = new URLSearchParams({
      grant_type: 'authorization_code',
      code: code,
      redirect_uri: redirectUri(),
      client_id: config.client_id,
      code_verifier: pending.verifier
    });
    return fetch(config.token_url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: body.toString()
    })
      .then(function (response) {
        return response.json().then(function (answer) {
          if (!response.ok) throw new Error('token endpoint: ' + (answer.error_description || answer.error || response.status));
          return answer;
        });
      })
      .then(function (answer) {
        var identity = answer.id_token ? claims(answer.id_token) : {};
        if (answer.id_token && identity.nonce !== pending.nonce) {
          throw new Error('the identity token does not carry this sign-in\'s nonce');
        }
        var access = claims(answer.access_token || '');
        session = {
          access_token: answer.access_token,
          patient: answer.patient || null,
          fhirUser: identity.fhirUser || access.fhirUser || answer.fhirUser || null,
          expires_at: Date.now() + 1000 * (Number(answer.expires_in) || 300)
        };
        sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
        patient = session.patient || pending.patient || '';
        stream = pending.stream || '';
        var clean = new URLSearchParams();
        if (patient) clean.set('patient', patient);
        if (stream) clean.set('stream', stream);
        window.history.replaceState(null, '', root.dataset.crfUrl + (clean.toString() ? '?' + clean : ''));
      });
  }

  /** Resolves when the page may call the API (open access, or a token), else shows "Sign in". */
  function authenticate() {
    return loadConfig().then(function (loaded) {
      config = loaded;
      if (config.auth === 'none') {
        root.dataset.auth = 'open';
        clearError(signInStatus, 'Access is open on this server (demo): the author is the reader field below.');
        return true;
      }
      if (!config.authorize_url || !config.token_url || !config.client_id) {
        root.dataset.auth = 'error';
        showError(signInStatus, 'Access control is on, but no authorization server is configured for this page ' +
          '(FHIRNET_AUTHORIZE_URL, FHIRNET_READER_TOKEN_URL, FHIRNET_READER_CLIENT_ID).');
        return false;
      }
      var done = query.get('code') ? finishSignIn(query.get('code'), query.get('state') || '') : Promise.resolve();
      return done.then(function () {
        if (query.get('error')) {
          // Back from the authorization server without a code: the reader's patient is kept.
          var pending = JSON.parse(sessionStorage.getItem(SIGN_IN_KEY) || 'null');
          sessionStorage.removeItem(SIGN_IN_KEY);
          if (pending && pending.state === query.get('state')) {
            patient = pending.patient || '';
            stream = pending.stream || '';
          }
          signInButton.hidden = false;
          throw new Error('sign-in refused: ' + query.get('error') +
            (query.get('error_description') ? ' (' + query.get('error_description') + ')' : ''));
        }
        if (!session) session = storedSession();
        if (query.get('launch') && !query.get('code')) {
          root.dataset.auth = 'signed-out';
          clearError(signInStatus, 'Launched from the EHR: signing in…');
          return signIn(query.get('launch')).then(function () { return false; });
        }
        if (!session) {
          root.dataset.auth = 'signed-out';
          clearError(signInStatus, 'Sign in to open patients\' forms and submit.');
          signInButton.hidden = false;
          return false;
        }
        if (!patient && session.patient) patient = session.patient;
        root.dataset.auth = 'signed-in';
        clearError(signInStatus, 'Signed in' + (session.fhirUser ? ' as ' + session.fhirUser : '') + '.');
        if (session.fhirUser) {
          readerInput.value = session.fhirUser;
          readerInput.readOnly = true;
        }
        return true;
      });
    });
  }

  // --- the form ---------------------------------------------------------------------------------

  /** The token was refused (expired, revoked): forget it and offer to sign in again. */
  function signedOut() {
    if (!config || config.auth === 'none') return;
    session = null;
    sessionStorage.removeItem(TOKEN_KEY);
    root.dataset.auth = 'signed-out';
    showError(signInStatus, 'Your sign-in has ended: sign in again (the form stays as it is).');
    signInButton.hidden = false;
  }

  function fetchJson(url, options) {
    return fetch(url, options).then(function (response) {
      if (response.status === 401) signedOut();
      if (!response.ok) {
        return response.text().then(function (text) {
          throw new Error((options && options.method || 'GET') + ' ' + url + ' answered ' + response.status + ': ' + text.slice(0, 300));
        });
      }
      return response.json();
    });
  }

  /** The patient's next form from $populate: {response, issues}. */
  function populate() {
    var parameters = new URLSearchParams({ subject: 'Patient/' + patient });
    if (stream) parameters.set('stream', stream);
    return fetchJson(root.dataset.populateUrl + '?' + parameters.toString(), { headers: headers() })
      .then(function (answer) {
        var found = { response: null, issues: [] };
        (answer.parameter || []).forEach(function (parameter) {
          if (parameter.name === 'response') found.response = parameter.resource;
          if (parameter.name === 'issues' && parameter.resource) found.issues = parameter.resource.issue || [];
        });
        if (answer.resourceType === 'QuestionnaireResponse') found.response = answer;
        return found;
      });
  }

  /** Fetch the Questionnaire (and the patient's pre-filled form) and render it. */
  function loadForm(signedIn) {
    if (patient && !signedIn && config && config.auth !== 'none') {
      // No blank form to type into and lose: the patient's form comes after signing in.
      root.dataset.form = 'signed-out';
      clearError(formStatus, 'Sign in to open the next form of Patient/' + patient + '.');
      return;
    }
    root.dataset.form = 'loading';
    if (typeof LForms === 'undefined' || !LForms.Util) {
      formFailed('LHC-Forms did not load (see the browser console).');
      return;
    }
    var questionnaire = fetchJson(root.dataset.questionnaireUrl, {
      headers: { Accept: FHIR_JSON }, credentials: 'same-origin'
    });
    var draft = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || 'null');
    sessionStorage.removeItem(DRAFT_KEY);
    var resumed = draft && draft.patient === patient && (draft.stream || '') === stream;
    var prefilled = (patient && signedIn) ?
      (resumed ? Promise.resolve({ response: draft.response, issues: [] }) : populate()) :
      Promise.resolve({ response: null, issues: [] });
    Promise.all([questionnaire, prefilled])
      .then(function (loaded) {
        var options = {};
        if (loaded[1].response) options.questionnaireResponse = loaded[1].response;
        populateIssues.replaceChildren.apply(populateIssues, loaded[1].issues.map(issueItem));
        return LForms.Util.addFormToPage(loaded[0], container, options);
      })
      .then(function () {
        clearError(formStatus, patient ?
          'The next form of Patient/' + patient + (stream ? ' (' + stream + ')' : '') +
          (signedIn ? (resumed ? ', as you left it before signing in again.' :
            ', pre-filled from the earlier forms.') : '.') : '');
        validateButton.disabled = false;
        submitButton.disabled = !(patient && signedIn);
        patientsForm = Boolean(patient && signedIn);
        window.formReady = true;
        root.dataset.form = 'ready';
        if (patient && signedIn) scheduleAssessment();
      })
      .catch(function (error) {
        formFailed(String(error && error.message ? error.message : error));
      });
  }

  /**
   * The QuestionnaireResponse of the form as fhirnet should receive it: LHC-Forms' non-standard
   * meta.profile and lformsVersion tag removed, and the subject from the page's field.
   */
  function questionnaireResponse() {
    var response = LForms.Util.getFormFHIRData('QuestionnaireResponse', 'R4', container);
    if (response.meta) {
      if (Array.isArray(response.meta.profile)) {
        response.meta.profile = response.meta.profile.filter(function (url) {
          return url.indexOf(LFORMS_PROFILE_PREFIX) !== 0;
        });
        if (response.meta.profile.length === 0) delete response.meta.profile;
      }
      if (Array.isArray(response.meta.tag)) {
        response.meta.tag = response.meta.tag.filter(function (tag) {
          return !LFORMS_TAG_CODE.test(tag.code || '');
        });
        if (response.meta.tag.length === 0) delete response.meta.tag;
      }
      if (Object.keys(response.meta).length === 0) delete response.meta;
    }
    var subject = subjectInput.value.trim();
    if (subject) {
      response.subject = { reference: subject };
    } else {
      delete response.subject; // the validator will say that it is required
    }
    var author = readerInput.value.trim();
    if (author) response.author = { reference: author };
    return response;
  }

  // --- the live assessment ----------------------------------------------------------------------

  function scheduleAssessment() {
    if (!patient || root.dataset.form !== 'ready' || root.dataset.auth === 'signed-out') return;
    window.clearTimeout(assessTimer);
    assessTimer = window.setTimeout(assess, ASSESS_DELAY_MS);
  }

  function assess() {
    var body;
    try {
      body = JSON.stringify(questionnaireResponse());
    } catch (error) {
      return;
    }
    if (body === lastAssessed) return;
    lastAssessed = body;
    root.dataset.assessment = 'pending';
    fetchJson(root.dataset.assessUrl, {
      method: 'POST',
      headers: headers({ 'Content-Type': FHIR_JSON, Accept: 'application/json' }),
      body: body
    })
      .then(function (answer) {
        if (body !== lastAssessed) return; // a later edit is on its way
        showAssessment(answer);
        assessedCount += 1;
        root.dataset.assessed = String(assessedCount);
        root.dataset.assessment = 'done';
      })
      .catch(function (error) {
        if (body !== lastAssessed) return;
        root.dataset.assessment = 'failed';
        lastAssessed = null;
        showError(document.getElementById('assessmentStatus'), 'The assessment failed: ' + error.message);
      });
  }

  function showAssessment(answer) {
    var panel = document.getElementById('assessment');
    var status = document.getElementById('assessmentStatus');
    var set = function (id, text) { document.getElementById(id).textContent = text; };
    panel.dataset.state = answer.assessable ? 'assessed' : 'incomplete';
    clearError(status, answer.assessable ? 'Computed from the form as it is now (nothing written).' :
      'Not assessable yet: ' + (answer.missing || []).length + ' answer(s) missing.');
    set('overall', answer.assessable ? label(answer.overall) : '');
    set('criteria', label(answer.criteria));
    set('sum', millimetres(answer.sum_mm));
    set('baselineSum', millimetres(answer.baseline_sum_mm));
    set('nadirSum', millimetres(answer.nadir_sum_mm));
    set('changeBaseline', percent(answer.change_from_baseline_pct));
    set('changeNadir', percent(answer.change_from_nadir_pct));
    set('targetResponse', label(answer.target_response));
    set('nonTargetResponse', label(answer.non_target_response));
    set('newLesionResponse', label(answer.new_lesion_response));
    listInto(document.getElementById('reasons'), answer.reasons);
    listInto(document.getElementById('missing'), (answer.missing || []).map(function (item) {
      return 'Missing: ' + (item && item.item ? item.item + ' — ' : '') + label(item);
    }));
    listInto(document.getElementById('warnings'), (answer.warnings || []).concat(
      (answer.problems || []).map(function (problem) { return 'Would be refused: ' + label(problem); })));
    var banner = document.getElementById('discordance');
    var discordances = answer.discordances || [];
    banner.hidden = discordances.length === 0;
    banner.textContent = discordances.map(function (d) {
      return 'Discordance: your ' + label(d.item) + ' is ' + label(d.reader) +
        ', fhirnet computes ' + label(d.computed) + '.';
    }).join(' ');
  }

  // --- sign and submit --------------------------------------------------------------------------

  function link(text, href, id) {
    var anchor = document.createElement('a');
    anchor.href = href;
    anchor.id = id;
    anchor.textContent = text;
    return anchor;
  }

  function submit() {
    var response;
    try {
      response = questionnaireResponse();
    } catch (error) {
      root.dataset.submission = 'failed';
      showError(submitStatus, 'Could not read the form: ' + error);
      return;
    }
    // Signed in, the server makes the reader's fhirUser the author; open access needs a name.
    if (!response.author && root.dataset.auth !== 'signed-in') {
      root.dataset.submission = 'failed';
      showError(submitStatus, 'Name the reader (author) before signing.');
      readerInput.focus();
      return;
    }
    if (!formIdentifier) {
      formIdentifier = response.identifier && response.identifier.value ? response.identifier :
        { system: SUBMISSION_SYSTEM, value: 'crf-' + crypto.randomUUID() };
    }
    response.identifier = formIdentifier;
    response.status = stored ? 'amended' : 'completed';
    response.authored = new Date().toISOString();
    stopFollowing();
    root.dataset.submission = 'pending';
    submitButton.disabled = true;
    clearError(submitStatus, 'Submitting…');
    submitLinks.replaceChildren();
    submitIssues.replaceChildren();
    fetch(root.dataset.submitUrl, {
      method: 'POST',
      headers: headers({ 'Content-Type': FHIR_JSON, Prefer: 'return=OperationOutcome' }),
      body: JSON.stringify(response)
    })
      .then(function (answer) {
        if (answer.status === 401) signedOut();
        return answer.json().catch(function () { return {}; }).then(function (outcome) {
          showSubmitted(answer, outcome);
        });
      })
      .catch(function (error) {
        root.dataset.submission = 'failed';
        showError(submitStatus, 'The submission failed: ' + error);
      })
      .finally(function () { submitButton.disabled = false; });
  }

  function showSubmitted(answer, outcome) {
    var issues = (outcome && Array.isArray(outcome.issue)) ? outcome.issue : [];
    submitIssues.replaceChildren.apply(submitIssues, issues.map(issueItem));
    var links = [];
    if (answer.status === 200 || answer.status === 201) {
      root.dataset.submission = 'stored';
      stored = true;
      clearError(submitStatus, (answer.status === 201 ? 'Signed and stored' : 'Already stored, unchanged') +
        ' (HTTP ' + answer.status + ').');
      var location = answer.headers.get('Location');
      if (location) links.push(link('The stored form', location, 'storedLink'));
      issues.forEach(function (issue) {
        var text = (issue.details && issue.details.text) || issue.diagnostics || '';
        var found = /DiagnosticReport (\S+?)(?= \(|\.?$)/.exec(text);
        if (found && !document.getElementById('reportLink')) {
          links.push(link('The report', found[1].replace(/\.$/, ''), 'reportLink'));
        }
      });
    } else if (answer.status === 202) {
      root.dataset.submission = 'queued';
      clearError(submitStatus, 'Accepted and queued (HTTP 202): the FHIR server cannot take it now; ' +
        'it is delivered when it is back.');
      var status = answer.headers.get('Content-Location');
      if (status) {
        links.push(link('Delivery status', status, 'statusLink'));
        followDelivery(status, answer, issues);
      }
    } else {
      root.dataset.submission = 'failed';
      showError(submitStatus, 'Not stored (HTTP ' + answer.status + '): see the issues below.');
    }
    if (patient) links.push(link('The patient\'s timeline', timelineUrl(), 'submittedTimelineLink'));
    submitLinks.replaceChildren.apply(submitLinks, links);
  }

  // --- a queued submission, followed to its end ---------------------------------------------------
  //
  // A 202 means fhirnet kept the form and delivers it when the FHIR server takes it. The page asks
  // GET /fhir/_submission/<id> (the Content-Location) again after its Retry-After until the answer
  // is 200 (delivered or failed), and stops when the page is left or the form is signed again.

  function stopFollowing() {
    if (!following) return;
    window.clearTimeout(following.timer);
    if (following.controller) following.controller.abort();
    following = null;
  }

  function followDelivery(url, answer, issues) {
    stopFollowing();
    following = { url: url, timer: null, controller: null };
    showQueued(answer, issues);
    scheduleStatus(following, answer);
  }

  /** The next look at the status: after its Retry-After (bounded), or a default. */
  function scheduleStatus(current, answer) {
    var seconds = answer ? Number(answer.headers.get('Retry-After')) : NaN;
    var delay = isFinite(seconds) && seconds > 0 ? seconds * 1000 : STATUS_DEFAULT_MS;
    delay = Math.min(STATUS_MAX_MS, Math.max(STATUS_MIN_MS, delay));
    current.timer = window.setTimeout(function () { checkStatus(current); }, delay);
  }

  function checkStatus(current) {
    if (following !== current) return;
    current.controller = new AbortController();
    fetch(current.url, { headers: headers(), signal: current.controller.signal })
      .then(function (answer) {
        if (following !== current) return null;
        if (answer.status === 202) {
          showQueued(answer, []);
          scheduleStatus(current, answer);
          return null;
        }
        return answer.json().catch(function () { return {}; }).then(function (body) {
          if (following !== current) return;
          if (answer.status === 200) {
            following = null;
            showDelivery(body);
            return;
          }
          if (answer.status === 401) {
            signedOut();  // sign in again: the submission stays queued on the server
            following = null;
            showError(submitStatus, 'Queued for delivery; sign in again to follow its status.');
            return;
          }
          following = null;
          showError(submitStatus, 'The delivery status answered HTTP ' + answer.status +
            '; the submission itself stays with fhirnet.');
          submitIssues.replaceChildren.apply(submitIssues, ((body && body.issue) || []).map(issueItem));
        });
      })
      .catch(function (error) {
        if (following !== current || (error && error.name === 'AbortError')) return;
        // fhirnet itself out of reach for a moment: keep the last status and look again.
        scheduleStatus(current, null);
      });
  }

  /**
   * "Queued (attempt n, next try hh:mm:ss)" from the X-Progress of the 202 or of the status
   * (R4 async.html), else from the OperationOutcome, which says the same in its message.
   */
  function showQueued(answer, issues) {
    var progress = answer.headers.get('X-Progress') || (issues || []).map(function (issue) {
      return (issue.details && issue.details.text) || issue.diagnostics || '';
    }).join(' ');
    var attempts = /Attempts: (\d+)/.exec(progress);
    var lastError = /the last one failed: ([^;]+)/.exec(progress);
    var next = /next attempt not before (\S+?Z)/.exec(progress);
    var made = attempts ? Number(attempts[1]) : 0;
    root.dataset.submission = 'queued';
    root.dataset.deliveryAttempts = String(made);
    var parts = [made ? 'attempt ' + made : 'not tried yet'];
    if (next && !isNaN(Date.parse(next[1]))) {
      parts.push('next try ' + new Date(next[1]).toLocaleTimeString());
    }
    var text = 'Queued for the FHIR server (' + parts.join(', ') + ')';
    if (lastError) text += '; the last attempt failed: ' + lastError[1].trim();
    clearError(submitStatus, text + '. Accepted (HTTP 202): fhirnet keeps it and delivers it when the server takes it.');
  }

  /** The status's batch-response: its single entry is the answer the submission finally got. */
  function showDelivery(bundle) {
    var entry = (bundle && bundle.entry && bundle.entry[0]) || {};
    var result = entry.response || {};
    var status = parseInt(String(result.status || '0'), 10);
    var outcome = result.outcome || {};
    var issues = Array.isArray(outcome.issue) ? outcome.issue : [];
    submitIssues.replaceChildren.apply(submitIssues, issues.map(issueItem));
    var links = [];
    if (status >= 200 && status < 300) {
      root.dataset.submission = 'delivered';
      stored = true;
      clearError(submitStatus, 'Delivered: signed and stored on the FHIR server (' + result.status + ').');
      if (result.location) links.push(link('The stored form', result.location, 'storedLink'));
      var report = reportOf(entry, issues);
      if (report) links.push(link('The report', report, 'reportLink'));
    } else {
      root.dataset.submission = 'failed';
      showError(submitStatus, 'Delivery failed (' + (result.status || 'no status') +
        '): not stored; see the issues below, correct the form and sign again.');
    }
    var statusLink = document.getElementById('statusLink');
    if (statusLink) links.push(statusLink);
    if (patient) links.push(link('The patient\'s timeline', timelineUrl(), 'submittedTimelineLink'));
    submitLinks.replaceChildren.apply(submitLinks, links);
  }

  /** The DiagnosticReport of a delivered form: the entry's link, or named in its outcome. */
  function reportOf(entry, issues) {
    var found = (entry.link || []).filter(function (l) { return l.relation === REPORT_RELATION; })[0];
    if (found && found.url) return found.url;
    for (var i = 0; i < issues.length; i += 1) {
      var text = (issues[i].details && issues[i].details.text) || issues[i].diagnostics || '';
      var named = /DiagnosticReport (\S+?)(?= \(|\.?$|\. )/.exec(text);
      if (named) return named[1].replace(/\.$/, '');
    }
    return null;
  }

  // Leaving the page stops the polling; a page restored from the back-forward cache resumes it.
  var leftWhileFollowing = null;
  window.addEventListener('pagehide', function () {
    leftWhileFollowing = following ? following.url : null;
    stopFollowing();
  });
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted || !leftWhileFollowing) return;
    following = { url: leftWhileFollowing, timer: null, controller: null };
    leftWhileFollowing = null;
    scheduleStatus(following, null);
  });

  function timelineUrl() {
    var parameters = new URLSearchParams({ patient: patient });
    if (stream) parameters.set('stream', stream);
    return root.dataset.timelinePageUrl + '?' + parameters.toString();
  }

  // --- validate ---------------------------------------------------------------------------------

  function issueItem(issue) {
    var item = document.createElement('li');
    var severity = issue.severity || 'unknown';
    item.className = 'crf-issue ' + severity;
    var severityLabel = document.createElement('span');
    severityLabel.className = 'crf-issue-severity';
    severityLabel.textContent = severity;
    var message = document.createElement('span');
    message.className = 'crf-issue-message';
    message.textContent =
      (issue.details && issue.details.text) || issue.diagnostics || issue.code || '';
    item.appendChild(severityLabel);
    item.appendChild(message);
    (issue.expression || []).forEach(function (expression) {
      var code = document.createElement('code');
      code.className = 'crf-issue-expression';
      code.textContent = expression;
      item.appendChild(code);
    });
    return item;
  }

  function showOutcome(status, outcome) {
    var issues = (outcome && Array.isArray(outcome.issue)) ? outcome.issue : [];
    var errors = issues.filter(function (i) {
      return i.severity === 'error' || i.severity === 'fatal';
    }).length;
    var warnings = issues.filter(function (i) { return i.severity === 'warning'; }).length;
    issueList.replaceChildren.apply(issueList, issues.map(issueItem));
    var valid = status === 200 && errors === 0;
    validateStatus.classList.toggle('crf-error', !valid);
    validateStatus.textContent = (valid ? 'Valid' : 'Not valid') + ' (HTTP ' + status + '): ' +
      errors + ' error(s), ' + warnings + ' warning(s).';
    root.dataset.validation = valid ? 'valid' : 'invalid';
  }

  function validate() {
    var response;
    try {
      response = questionnaireResponse();
      delete response.author; // the validator checks the form, not who signs it
    } catch (error) {
      root.dataset.validation = 'failed';
      showError(validateStatus, 'Could not read the form: ' + error);
      return;
    }
    root.dataset.validation = 'pending';
    validateButton.disabled = true;
    validateStatus.classList.remove('crf-error');
    validateStatus.textContent = 'Validating…';
    issueList.replaceChildren();
    sentResponse.textContent = JSON.stringify(response, null, 2);
    sentDetails.hidden = false;
    fetch(root.dataset.validateUrl, {
      method: 'POST',
      headers: headers({ 'Content-Type': FHIR_JSON }),
      credentials: 'same-origin',
      body: JSON.stringify(response)
    })
      .then(function (answer) {
        return answer.json().then(function (outcome) { showOutcome(answer.status, outcome); });
      })
      .catch(function (error) {
        root.dataset.validation = 'failed';
        showError(validateStatus, 'Validation request failed: ' + error);
      })
      .finally(function () { validateButton.disabled = false; });
  }

  // --- wiring -----------------------------------------------------------------------------------

  function openPatient() {
    var parameters = new URLSearchParams();
    if (patientInput.value.trim()) parameters.set('patient', patientInput.value.trim());
    if (streamInput.value.trim()) parameters.set('stream', streamInput.value.trim());
    window.location.assign(root.dataset.crfUrl + (parameters.toString() ? '?' + parameters : ''));
  }

  function start() {
    authenticate()
      .catch(function (error) {
        root.dataset.auth = 'error';
        showError(signInStatus, 'Sign-in failed: ' + (error && error.message ? error.message : error));
        return false;
      })
      .then(function (signedIn) {
        patientInput.value = patient;
        streamInput.value = stream;
        if (patient) {
          subjectInput.value = 'Patient/' + patient;
          timelineLink.href = timelineUrl();
          timelineLink.hidden = false;
        }
        loadForm(signedIn);
      });
  }

  validateButton.addEventListener('click', validate);
  submitButton.addEventListener('click', submit);
  openButton.addEventListener('click', openPatient);
  [patientInput, streamInput].forEach(function (input) {
    input.addEventListener('keydown', function (event) {
      if (event.key === 'Enter') openPatient();
    });
  });
  signInButton.addEventListener('click', function () {
    signIn(null).catch(function (error) { showError(signInStatus, 'Sign-in failed: ' + error); });
  });
  // LHC-Forms changes its model on input, change and selection; any of them may change the
  // exported form, and assess() sends only a form that differs from the last one it sent.
  ['input', 'change', 'keyup', 'click', 'focusout'].forEach(function (type) {
    container.addEventListener(type, scheduleAssessment, true);
  });
  readerInput.addEventListener('input', scheduleAssessment);
  start();
})();
