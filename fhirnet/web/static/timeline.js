/*
 * The patient's timeline (GET /crf/timeline?patient=&stream=): the exams table and an SVG chart
 * of the sum of diameters over time (baseline and nadir marked, PR/PD threshold lines, one line
 * per lesion), from GET /api/v1/patients/<id>/timeline.
 *
 * Plain JavaScript, no build step, same origin only. The table is the source of truth; the chart
 * has a title and a description for assistive technology. With access control on, the token the
 * /crf page obtained in this tab (sessionStorage) is sent; without one the page links to /crf to
 * sign in. State for tests: #timeline[data-timeline] "loading" | "ready" | "error".
 */
(function () {
  'use strict';

  var SVG = 'http://www.w3.org/2000/svg';
  var TOKEN_KEY = 'fhirnet.crf.token';
  var root = document.getElementById('timeline');
  var status = document.getElementById('timelineStatus');
  var chart = document.getElementById('chart');
  var body = document.querySelector('#exams tbody');
  var query = new URLSearchParams(window.location.search);
  var patient = query.get('patient') || '';
  var stream = query.get('stream') || '';

  function failed(message) {
    root.dataset.timeline = 'error';
    status.textContent = message;
    status.classList.add('tl-error');
  }

  /** The first of several names a field may have. */
  function pick(object, names) {
    for (var i = 0; i < names.length; i += 1) {
      if (object && object[names[i]] !== undefined && object[names[i]] !== null) return object[names[i]];
    }
    return null;
  }

  function label(value) {
    if (value === null || value === undefined) return '';
    if (typeof value === 'string' || typeof value === 'number') return String(value);
    if (Array.isArray(value)) return value.map(label).join(', ');
    return value.display || value.text || value.message || value.label || value.code ||
      (value.coding ? label(value.coding[0]) : JSON.stringify(value));
  }

  function percent(value) {
    if (value === null || value === undefined) return '—';
    var rounded = Math.round(Number(value) * 10) / 10;
    return (rounded > 0 ? '+' : '') + rounded + ' %';
  }

  function cell(row, content, className) {
    var td = document.createElement('td');
    if (className) td.className = className;
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    row.appendChild(td);
    return td;
  }

  function list(values, className) {
    var ul = document.createElement('ul');
    (values || []).forEach(function (value) {
      var li = document.createElement('li');
      if (className) li.className = className;
      li.textContent = label(value);
      ul.appendChild(li);
    });
    return ul;
  }

  /** A FHIR URL as given, or ``Type/id`` relative to this server's FHIR base. */
  function fhirUrl(reference) {
    return /^(https?:)?\//.test(reference) ? reference : '/fhir/' + reference;
  }

  function anchor(text, href) {
    var a = document.createElement('a');
    a.href = fhirUrl(href);
    a.textContent = text;
    return a;
  }

  function discordanceTexts(exam) {
    var found = pick(exam, ['discordances', 'discordance']) || [];
    if (!Array.isArray(found)) found = [found];
    return found.map(function (d) {
      if (typeof d === 'string') return d;
      return 'Discordant: reader ' + label(d.item) + ' ' + label(d.reader) +
        ', computed ' + label(d.computed);
    });
  }

  function examRows(exams) {
    body.replaceChildren();
    exams.forEach(function (exam) {
      var row = document.createElement('tr');
      row.className = 'tl-exam';
      cell(row, label(pick(exam, ['date', 'imaging_date'])));
      cell(row, label(pick(exam, ['assessment_type', 'type'])));
      cell(row, label(pick(exam, ['criteria'])));
      cell(row, label(pick(exam, ['overall', 'category'])) || '—', 'tl-category');
      var sum = pick(exam, ['sum_mm', 'sum']);
      cell(row, sum === null ? '—' : sum + ' mm', 'num');
      cell(row, percent(pick(exam, ['change_from_baseline_pct'])), 'num');
      cell(row, percent(pick(exam, ['change_from_nadir_pct'])), 'num');
      cell(row, [pick(exam, ['target_response']), pick(exam, ['non_target_response']),
        pick(exam, ['new_lesion_response'])].map(function (v) { return label(v) || '—'; }).join(' / '));
      cell(row, list(pick(exam, ['reasons'])));
      var notes = list(pick(exam, ['warnings']), 'tl-warning');
      discordanceTexts(exam).forEach(function (text) {
        var li = document.createElement('li');
        li.className = 'tl-discordant';
        li.textContent = text;
        notes.appendChild(li);
      });
      cell(row, notes);
      var links = document.createElement('span');
      var form = pick(exam, ['questionnaire_response', 'questionnaire_response_url', 'form_url', 'form']);
      var report = pick(exam, ['diagnostic_report', 'diagnostic_report_url', 'report_url', 'report']);
      if (form) links.appendChild(anchor('QuestionnaireResponse', form));
      if (form && report) links.appendChild(document.createTextNode(' '));
      if (report) links.appendChild(anchor('DiagnosticReport', report));
      cell(row, links);
      body.appendChild(row);
    });
  }

  function svg(name, attributes, text) {
    var element = document.createElementNS(SVG, name);
    Object.keys(attributes || {}).forEach(function (key) { element.setAttribute(key, attributes[key]); });
    if (text !== undefined) element.textContent = text;
    return element;
  }

  /** Per-lesion sizes of an exam as {id: mm}, whatever shape the API gives them in. */
  function lesionSizes(exam) {
    var lesions = pick(exam, ['lesions', 'lesion_sizes', 'targets']) || {};
    var sizes = {};
    if (Array.isArray(lesions)) {
      lesions.forEach(function (lesion) {
        var id = label(pick(lesion, ['id', 'lesion_id', 'label']));
        var size = pick(lesion, ['size_mm', 'size', 'diameter_mm']);
        if (id && size !== null && lesion.role !== 'non-target') sizes[id] = Number(size);
      });
    } else {
      Object.keys(lesions).forEach(function (id) {
        var value = lesions[id];
        sizes[id] = Number(typeof value === 'object' && value ? pick(value, ['size_mm', 'size']) : value);
      });
    }
    return sizes;
  }

  function drawChart(data, exams) {
    var points = exams.map(function (exam) {
      return {
        date: new Date(label(pick(exam, ['date', 'imaging_date']))),
        day: label(pick(exam, ['date', 'imaging_date'])),
        sum: pick(exam, ['sum_mm', 'sum']),
        lesions: lesionSizes(exam)
      };
    }).filter(function (p) { return !isNaN(p.date.getTime()); });
    var thresholds = pick(data, ['thresholds']) || {};
    var pr = pick(thresholds, ['partial_response_mm', 'pr_mm', 'pr']);
    if (pr === null) pr = pick(data, ['pr_threshold_mm', 'pr_threshold']);
    var pd = pick(thresholds, ['progression_mm', 'pd_mm', 'pd']);
    if (pd === null) pd = pick(data, ['pd_threshold_mm', 'pd_threshold']);
    var baselineDate = label(pick(data, ['baseline_date']));
    var nadirDate = label(pick(data, ['nadir_date']));
    var values = [];
    points.forEach(function (p) {
      if (p.sum !== null) values.push(Number(p.sum));
      Object.keys(p.lesions).forEach(function (id) { values.push(p.lesions[id]); });
    });
    [pr, pd].forEach(function (v) { if (v !== null) values.push(Number(v)); });
    var width = 900;
    var height = 360;
    var left = 60;
    var right = 110;
    var top = 20;
    var bottom = 40;
    var figure = svg('svg', {
      viewBox: '0 0 ' + width + ' ' + height, width: width, height: height,
      role: 'img', 'aria-labelledby': 'chartTitle chartDesc'
    });
    var sums = points.filter(function (p) { return p.sum !== null; });
    figure.appendChild(svg('title', { id: 'chartTitle' }, 'Sum of diameters over time' +
      (patient ? ', Patient/' + patient : '')));
    figure.appendChild(svg('desc', { id: 'chartDesc' },
      sums.map(function (p) { return p.day + ': ' + p.sum + ' mm'; }).join('; ') +
      (baselineDate ? '. Baseline ' + baselineDate : '') + (nadirDate ? ', nadir ' + nadirDate : '') +
      (pr !== null ? '. PR threshold ' + pr + ' mm' : '') + (pd !== null ? ', PD threshold ' + pd + ' mm' : '') +
      (thresholds.basis ? ' (' + thresholds.basis + ')' : '') +
      '. The table below holds every figure.'));
    if (points.length === 0 || values.length === 0) {
      chart.replaceChildren(figure);
      return;
    }
    var maxValue = Math.max.apply(null, values) * 1.1 || 1;
    var first = points[0].date.getTime();
    var last = points[points.length - 1].date.getTime();
    var span = Math.max(last - first, 1);
    var x = function (date) { return left + (width - left - right) * (date.getTime() - first) / span; };
    var y = function (value) { return top + (height - top - bottom) * (1 - value / maxValue); };
    figure.appendChild(svg('line', { x1: left, y1: y(0), x2: width - right, y2: y(0), stroke: '#8c959f' }));
    figure.appendChild(svg('line', { x1: left, y1: top, x2: left, y2: y(0), stroke: '#8c959f' }));
    figure.appendChild(svg('text', { x: 4, y: top + 10, 'font-size': 12 }, Math.round(maxValue) + ' mm'));
    figure.appendChild(svg('text', { x: 4, y: y(0), 'font-size': 12 }, '0'));
    function threshold(value, name, colour) {
      if (value === null) return;
      figure.appendChild(svg('line', {
        x1: left, y1: y(value), x2: width - right, y2: y(value), stroke: colour,
        'stroke-dasharray': '6 4', class: 'tl-threshold-' + name.toLowerCase()
      }));
      figure.appendChild(svg('text', { x: left + 6, y: y(value) - 4, fill: colour, 'font-size': 12 },
        name + ' threshold ' + value + ' mm'));
    }
    threshold(pr === null ? null : Number(pr), 'PR', '#1a7f37');
    threshold(pd === null ? null : Number(pd), 'PD', '#b42318');
    var palette = ['#8250df', '#bf8700', '#0a7ea4', '#cf222e', '#57606a', '#1b7c83'];
    var ids = {};
    points.forEach(function (p) { Object.keys(p.lesions).forEach(function (id) { ids[id] = true; }); });
    Object.keys(ids).forEach(function (id, index) {
      var coordinates = points.filter(function (p) { return p.lesions[id] !== undefined; })
        .map(function (p) { return x(p.date) + ',' + y(p.lesions[id]); });
      var colour = palette[index % palette.length];
      figure.appendChild(svg('polyline', {
        points: coordinates.join(' '), fill: 'none', stroke: colour,
        'stroke-width': 1.5, class: 'tl-lesion', 'data-lesion': id
      }));
      var end = coordinates[coordinates.length - 1].split(',');
      figure.appendChild(svg('text', { x: Number(end[0]) + 8, y: Number(end[1]) + 4, fill: colour, 'font-size': 12 }, id));
    });
    figure.appendChild(svg('polyline', {
      points: sums.map(function (p) { return x(p.date) + ',' + y(Number(p.sum)); }).join(' '),
      fill: 'none', stroke: '#0969da', 'stroke-width': 3, class: 'tl-sum'
    }));
    if (sums.length) {
      var lastSum = sums[sums.length - 1];
      figure.appendChild(svg('text', { x: x(lastSum.date) + 10, y: y(Number(lastSum.sum)) + 4, fill: '#0969da',
        'font-size': 12, 'font-weight': 'bold' }, 'sum ' + lastSum.sum + ' mm'));
    }
    sums.forEach(function (p) {
      var marker = p.day === baselineDate ? 'baseline' : (p.day === nadirDate ? 'nadir' : '');
      figure.appendChild(svg('circle', {
        cx: x(p.date), cy: y(Number(p.sum)), r: marker ? 7 : 4,
        fill: marker === 'baseline' ? '#1f2328' : (marker === 'nadir' ? '#1a7f37' : '#0969da'),
        class: 'tl-point' + (marker ? ' tl-' + marker : '')
      }));
      if (marker) {
        figure.appendChild(svg('text', { x: x(p.date) + 8, y: y(Number(p.sum)) - 8, 'font-size': 12 }, marker));
      }
      figure.appendChild(svg('text', { x: x(p.date) - 30, y: height - 12, 'font-size': 11 }, p.day));
    });
    chart.replaceChildren(figure);
  }

  function load() {
    if (!patient) {
      failed('Name a patient: /crf/timeline?patient=<id>.');
      return;
    }
    var crfLink = document.getElementById('crfLink');
    var crfQuery = new URLSearchParams({ patient: patient });
    if (stream) crfQuery.set('stream', stream);
    crfLink.href = root.dataset.crfUrl + '?' + crfQuery.toString();
    var headers = { Accept: 'application/json' };
    var stored = null;
    try { stored = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null'); } catch (e) { stored = null; }
    if (stored && stored.access_token) headers.Authorization = 'Bearer ' + stored.access_token;
    var url = root.dataset.apiUrl.replace('{patient}', encodeURIComponent(patient)) +
      (stream ? '?stream=' + encodeURIComponent(stream) : '');
    fetch(url, { headers: headers })
      .then(function (response) {
        if (response.status === 401) {
          throw new Error('Sign in on the form page first (the timeline uses its sign-in).');
        }
        if (!response.ok) throw new Error('GET ' + url + ' answered ' + response.status);
        return response.json();
      })
      .then(function (data) {
        var exams = pick(data, ['exams', 'entries', 'timeline']) || [];
        examRows(exams);
        drawChart(data, exams);
        status.textContent = exams.length + ' exam(s)' + (stream ? ', stream ' + stream : '') + '.';
        root.dataset.timeline = 'ready';
      })
      .catch(function (error) { failed(String(error && error.message ? error.message : error)); });
  }

  load();
})();
