/*
 * The /crf page of fhirnet: render the served CRF Questionnaire with LHC-Forms, and on "Validate"
 * post the filled form as a QuestionnaireResponse to $validate and list the OperationOutcome.
 *
 * Plain JavaScript (no build step), loaded after the LHC-Forms scripts. It talks to its own
 * origin only: the URLs come from data- attributes that the server wrote into the page.
 *
 * For tests and for EHR developers poking at the page, the state is exposed as attributes (so
 * that waiting for it needs no script evaluation, which the page's CSP forbids) and globals:
 *   #crf[data-form]        "loading" | "ready" | "error";  window.formReady, window.formError;
 *   #crf[data-validation]  "pending" | "valid" | "invalid" | "failed" after "Validate".
 */
(function () {
  'use strict';

  var FHIR_JSON = 'application/fhir+json';
  /** LHC-Forms' own meta.profile for R4 (not a published profile) and its version tag. */
  var LFORMS_PROFILE_PREFIX = 'http://hl7.org/fhir/4.0/StructureDefinition/';
  var LFORMS_TAG_CODE = /^lformsVersion:/;

  var root = document.getElementById('crf');
  var container = document.getElementById('formContainer');
  var formStatus = document.getElementById('formStatus');
  var subjectInput = document.getElementById('subject');
  var validateButton = document.getElementById('validateButton');
  var validateStatus = document.getElementById('validateStatus');
  var issueList = document.getElementById('issues');
  var sentDetails = document.getElementById('sentDetails');
  var sentResponse = document.getElementById('sentResponse');

  function formFailed(message) {
    window.formError = message;
    root.dataset.form = 'error';
    showError(formStatus, 'The form could not be rendered: ' + message);
  }

  function showError(element, message) {
    element.textContent = message;
    element.classList.add('crf-error');
  }

  /** Fetch the Questionnaire and render it; sets window.formReady or window.formError. */
  function loadForm() {
    root.dataset.form = 'loading';
    if (typeof LForms === 'undefined' || !LForms.Util) {
      formFailed('LHC-Forms did not load (see the browser console).');
      return;
    }
    fetch(root.dataset.questionnaireUrl, {
      headers: { Accept: FHIR_JSON },
      credentials: 'same-origin'
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error('GET ' + root.dataset.questionnaireUrl + ' answered ' + response.status);
        }
        return response.json();
      })
      .then(function (questionnaire) {
        return LForms.Util.addFormToPage(questionnaire, container, {});
      })
      .then(function () {
        formStatus.textContent = '';
        validateButton.disabled = false;
        window.formReady = true;
        root.dataset.form = 'ready';
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
    return response;
  }

  function issueItem(issue) {
    var item = document.createElement('li');
    var severity = issue.severity || 'unknown';
    item.className = 'crf-issue ' + severity;
    var label = document.createElement('span');
    label.className = 'crf-issue-severity';
    label.textContent = severity;
    var message = document.createElement('span');
    message.className = 'crf-issue-message';
    message.textContent =
      (issue.details && issue.details.text) || issue.diagnostics || issue.code || '';
    item.appendChild(label);
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
      headers: { 'Content-Type': FHIR_JSON, Accept: FHIR_JSON },
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

  validateButton.addEventListener('click', validate);
  loadForm();
})();
