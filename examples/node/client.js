#!/usr/bin/env node
// A terminal's disaster-time lookup through onshi-gateway, over mutual TLS.
//
// What a facility's terminal does when a patient arrives without a card while the
// emergency function is active: an attribute search, the qualification of the chosen
// candidate, drug history and check-ups, an access under the life-or-body exemption,
// and the refusals a terminal must be able to explain (each read from the
// google.rpc.ErrorInfo reason and google.rpc.BadRequest field in the status details).
//
// stdout: one JSON object per step (machine-readable); stderr: what the terminal shows.
// Exit status: 0 if every step behaved as expected, 1 if one did not, 2 if the client
// could not start (missing certificate files, bad arguments).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { statusDetails } = require('./status_details');

const ACCESS_RECORD_HEADER = 'x-onshi-access-record';
const ERROR_DOMAIN = 'onshi.gateway';
const CALL_TIMEOUT_MS = 10_000;

// What the terminal tells its user for the reasons this scenario meets (docs/reasons.md
// lists them all). A terminal switches on the reason, never on the message text.
const TELL_USER = {
  AREA_NOT_ACTIVATED: 'The emergency function is not active here now; use the normal card-reader flow.',
  INSURER_NUMBER_CHECK_DIGIT: 'A digit of the insurer number is mistyped; check the card.',
  EXEMPTION_REASON_MISSING: "Say why the patient's consent cannot be obtained.",
  SEARCH_FACILITY_MISMATCH: 'That search was made at another facility; search again from here.',
  INSURER_OR_ADDRESS_MISSING: "Enter the insurer's name or part of the patient's address.",
  CONSENT_BASIS_MISSING: "Record the patient's consent, or the life-or-body exemption.",
  CONSENT_KIND_NOT_GIVEN: 'The patient did not consent to this information; ask for consent or leave it out.',
};

const USAGE = `usage: node client.js [--target HOST:PORT] [--certs DIR] [--authority NAME]
  [--facility CODE] [--other-facility CODE] [--outside-facility CODE] [--staff-id ID]
  [--name NAME] [--birth-date YYYY-MM-DD] [--sex male|female] [--address FRAGMENT]
  [--proto-dir DIR]`;

function options(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      // The gateway's terminal listener.
      target: { type: 'string', default: '127.0.0.1:50051' },
      // Written by `onshi-gateway certs dev`: server-ca.pem and facility-<code>.pem/.key.
      certs: { type: 'string', default: 'certs' },
      // TLS server name to verify, when --target is not a name in the gateway's certificate.
      authority: { type: 'string', default: '' },
      // This terminal's facility (in an activated area).
      facility: { type: 'string', default: '0410110019' },
      // Another facility in an activated area, whose certificate is also in --certs.
      'other-facility': { type: 'string', default: '0740140017' },
      // A facility outside every activated area, whose certificate is also in --certs.
      'outside-facility': { type: 'string', default: '1310110018' },
      'staff-id': { type: 'string', default: 'dr-0001' },
      // The patient as the user types them; the defaults are the simulator's demo patient.
      name: { type: 'string', default: 'やまだ　たろう' },
      'birth-date': { type: 'string', default: '1958-04-12' },
      sex: { type: 'string', default: 'male' },
      address: { type: 'string', default: '石巻' },
      // The gateway's API, loaded at run time: the repository's proto/ unless ONSHI_PROTO_DIR says.
      'proto-dir': { type: 'string', default: process.env.ONSHI_PROTO_DIR || path.join(__dirname, '..', '..', 'proto') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!['male', 'female'].includes(values.sex)) {
    throw new UsageError(`--sex: ${JSON.stringify(values.sex)} is not male or female`);
  }
  return values;
}

class UsageError extends Error {}

function loadApi(protoDir) {
  const definition = protoLoader.loadSync(
    ['onshi/v1/qualification.proto', 'onshi/v1/medical.proto'],
    // keepCase and enums as strings: the JSON printed matches the proto field and enum names.
    { includeDirs: [protoDir], keepCase: true, enums: String, longs: String, defaults: true, oneofs: true },
  );
  return grpc.loadPackageDefinition(definition).onshi.v1;
}

// One facility's connection: its own certificate is its identity.
function terminal(api, opts, facility) {
  const read = (file) => {
    try {
      return fs.readFileSync(path.join(opts.certs, file));
    } catch (e) {
      throw new UsageError(`cannot read the certificates of facility ${facility}: ${e.message}`);
    }
  };
  const credentials = grpc.credentials.createSsl(
    read('server-ca.pem'),
    read(`facility-${facility}.key`),
    read(`facility-${facility}.pem`),
  );
  const channelOptions = opts.authority ? { 'grpc.ssl_target_name_override': opts.authority } : {};
  return {
    facility,
    qualification: new api.QualificationService(opts.target, credentials, channelOptions),
    medical: new api.MedicalInformationService(opts.target, credentials, channelOptions),
  };
}

function firstValue(metadata, key) {
  const values = metadata ? metadata.get(key) : [];
  return values.length ? String(values[0]) : '';
}

// What one call came back with: a response, or a refusal read from its details.
function call(client, method, request) {
  return new Promise((resolve) => {
    let headers = null;
    const rpc = client[method](request, new grpc.Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, response) => {
      if (!err) {
        resolve({ allowed: true, response, code: 'OK', access_record: firstValue(headers, ACCESS_RECORD_HEADER) });
        return;
      }
      const outcome = {
        allowed: false,
        code: grpc.status[err.code] || String(err.code),
        access_record: firstValue(err.metadata, ACCESS_RECORD_HEADER) || firstValue(headers, ACCESS_RECORD_HEADER),
        reason: '',
        domain: '',
        metadata: {},
        field_violations: [],
        message: err.details || '',
      };
      // grpc-status-details-bin, decoded as a google.rpc.Status.
      for (const detail of statusDetails(err.metadata)) {
        if (detail.type === 'google.rpc.ErrorInfo') {
          outcome.reason = detail.message.reason;
          outcome.domain = detail.message.domain;
          outcome.metadata = { ...detail.message.metadata };
        } else if (detail.type === 'google.rpc.BadRequest') {
          for (const v of detail.message.field_violations) {
            outcome.field_violations.push({ field: v.field, description: v.description });
          }
        }
      }
      resolve(outcome);
    });
    rpc.on('metadata', (m) => {
      headers = m;
    });
  });
}

function say(text) {
  process.stderr.write(`${text}\n`);
}

// The same insurer number with its last (check) digit changed.
function mistypedCheckDigit(insurerNumber) {
  const last = insurerNumber.slice(-1);
  const changed = /[0-9]/.test(last) ? String((Number(last) + 1) % 10) : '0';
  return insurerNumber.slice(0, -1) + changed;
}

class Scenario {
  constructor(opts) {
    this.opts = opts;
    this.steps = 0;
    this.failures = 0;
  }

  access(consent, identification = null) {
    return {
      staff: { staff_id: this.opts['staff-id'], role: 'STAFF_ROLE_DOCTOR' },
      consent,
      purpose: 'PURPOSE_MEDICAL_CARE',
      identification,
    };
  }

  // Prints the step's JSON line; returns whether it behaved as expected.
  report(step, expect, result, problem = '', data = {}) {
    this.steps += 1;
    const line = { step, expect, ok: !problem, code: result.code, access_record: result.access_record };
    if (result.allowed) {
      Object.assign(line, data);
    } else {
      Object.assign(line, {
        reason: result.reason,
        domain: result.domain,
        metadata: result.metadata,
        field_violations: result.field_violations,
        message: result.message,
        tell_user: TELL_USER[result.reason] || result.message,
      });
    }
    if (problem) {
      line.problem = problem;
      this.failures += 1;
      say(`  UNEXPECTED: ${problem}`);
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return !problem;
  }

  allowed(step, outcome, data = {}) {
    let problem = '';
    if (!outcome.allowed) {
      problem = `expected to be served, got ${outcome.code} ${outcome.reason}: ${outcome.message}`;
      say(`  REFUSED ${outcome.code} ${outcome.reason}: ${outcome.message}`);
    } else if (!outcome.access_record) {
      problem = `the response names no access record (${ACCESS_RECORD_HEADER})`;
    }
    return this.report(step, 'allowed', outcome, problem, data);
  }

  // A refusal as the terminal reads it: the ErrorInfo reason, and the field the
  // BadRequest names.
  refused(step, label, outcome, reason, field = '') {
    say(`  ${label}`);
    let problem = '';
    if (outcome.allowed) {
      problem = `expected ${reason}, but the call was served`;
    } else {
      const fields = outcome.field_violations.map((v) => v.field);
      say(`    ${outcome.code} ${outcome.reason || '-'}${fields.length ? ` (field ${fields.join(', ')})` : ''}`);
      say(`    the terminal shows: ${TELL_USER[outcome.reason] || outcome.message}`);
      if (outcome.reason !== reason) {
        problem = `expected reason ${reason}, got ${outcome.code} ${outcome.reason || '(no ErrorInfo)'}`;
      } else if (outcome.domain !== ERROR_DOMAIN) {
        problem = `expected ErrorInfo domain ${ERROR_DOMAIN}, got ${JSON.stringify(outcome.domain)}`;
      } else if (field && !fields.includes(field)) {
        problem = `expected a BadRequest naming ${field}, got ${JSON.stringify(fields)}`;
      } else if (!outcome.access_record) {
        problem = `the refusal names no access record (${ACCESS_RECORD_HEADER})`;
      }
    }
    return this.report(step, reason, outcome, problem);
  }

  async run(api) {
    const o = this.opts;
    const home = terminal(api, o, o.facility);
    const other = terminal(api, o, o['other-facility']);
    const outside = terminal(api, o, o['outside-facility']);
    const consent = { basis: 'CONSENT_BASIS_PATIENT_CONSENT' };
    const sex = o.sex === 'male' ? 'SEX_MALE' : 'SEX_FEMALE';
    say(`onshi-gateway at ${o.target}, as facility ${o.facility} (mutual TLS, certificates in ${o.certs})`);

    say(`\n1. Attribute search: ${o.name} ${o['birth-date']} ${o.sex} address containing ${o.address}`);
    const search = await call(home.qualification, 'SearchPatients', {
      access: this.access(consent),
      name: o.name,
      birth_date: o['birth-date'],
      sex,
      address_fragment: o.address,
    });
    if (!search.allowed) {
      this.allowed('search', search);
      return;
    }
    const r = search.response;
    say(`  ${r.outcome}: ${r.candidates.length} candidate(s), search_id ${r.search_id}`);
    for (const c of r.candidates) {
      const i = c.insured;
      say(`    ${c.name} (${c.name_kana}) ${c.birth_date} ${c.insurer_name} ${i.insurer_number} 記号 ${i.symbol} 番号 ${i.number} 枝番 ${i.branch}`);
    }
    // Nothing is picked automatically: with several candidates the user chooses.
    const single = r.outcome === 'SEARCH_OUTCOME_SINGLE_MATCH';
    const ok = this.report('search', 'allowed', search, single ? '' : `expected a single match, got ${r.outcome} (${r.explanation})`, {
      outcome: r.outcome,
      search_id: r.search_id,
      candidates: r.candidates,
      explanation: r.explanation,
    });
    if (!ok) {
      return;
    }
    const patient = r.candidates[0].insured;
    const bySearch = { method: 'IDENTIFICATION_METHOD_ATTRIBUTE_SEARCH', search_id: r.search_id };
    const known = { method: 'IDENTIFICATION_METHOD_INSURED_NUMBER_KNOWN' };

    say('\n2. Qualification of the chosen candidate, identified by that search:');
    const lookup = await call(home.qualification, 'LookupQualification', {
      access: this.access(consent, bySearch),
      insured: patient,
    });
    let data = {};
    if (lookup.allowed) {
      const q = lookup.response.qualification;
      say(`  ${lookup.response.status}: ${q.name} ${q.insurer_name} 負担割合 ${q.copayment_ratio} 資格取得 ${q.qualification_start} ${q.address}`);
      data = { status: lookup.response.status, qualification: q };
    }
    this.allowed('lookup', lookup, data);

    say('\n3. Drug history (薬剤情報):');
    const drugs = await call(home.medical, 'GetDrugHistory', { access: this.access(consent, bySearch), insured: patient });
    data = {};
    if (drugs.allowed) {
      const ds = drugs.response.dispensings;
      say(`  ${ds.length} dispensing(s)`);
      for (const d of ds.slice(0, 5)) {
        say(`    ${d.dispensing_date} ${d.drug_name} ${d.dose} ${d.quantity} × ${d.days}日 (${d.dispensing_facility})`);
      }
      data = { count: ds.length, dispensings: ds };
    }
    this.allowed('drug_history', drugs, data);

    say('\n4. Specific health check-ups (特定健診情報):');
    const checkups = await call(home.medical, 'GetHealthCheckups', { access: this.access(consent, bySearch), insured: patient });
    data = {};
    if (checkups.allowed) {
      const cs = checkups.response.checkups;
      say(`  ${cs.length} check-up(s)`);
      if (cs.length) {
        say(`    ${cs[0].checkup_date}: ${cs[0].items.slice(0, 6).map((i) => `${i.name} ${i.value}${i.unit}`).join(', ')}`);
      }
      data = { count: cs.length, checkups: cs };
    }
    this.allowed('checkups', checkups, data);

    say('\n5. An unconscious patient: the life-or-body exemption, identified from an ID document:');
    const exemptionReason = '意識不明で救急搬送、家族と連絡がつかない';
    const exempt = await call(home.qualification, 'LookupQualification', {
      access: this.access(
        {
          basis: 'CONSENT_BASIS_LIFE_OR_BODY_EXEMPTION',
          exemption_reason: exemptionReason,
          exemption_identification: 'EXEMPTION_IDENTIFICATION_ID_DOCUMENT',
        },
        known,
      ),
      insured: patient,
      birth_date: o['birth-date'],
    });
    data = {};
    if (exempt.allowed) {
      say(`  ${exempt.response.status}, recorded under the exemption (${exemptionReason}) for the operators' review`);
      data = {
        status: exempt.response.status,
        consent_basis: 'CONSENT_BASIS_LIFE_OR_BODY_EXEMPTION',
        exemption_reason: exemptionReason,
        qualification: exempt.response.qualification,
      };
    }
    this.allowed('exemption_lookup', exempt, data);

    say('\n5b. Clinical information (診療情報), newest first, one page of 20:');
    const clinical = await call(home.medical, 'GetClinicalInformation', {
      access: this.access(consent, bySearch),
      insured: patient,
      page_size: 20,
    });
    data = {};
    if (clinical.allowed) {
      const r = clinical.response;
      const d = r.dialysis || {};
      say(`  ${r.items.length} of ${r.total_items} item(s); dialysis: ${d.on_dialysis} ${d.method || ''} ${d.since || ''}`);
      data = {
        count: r.items.length,
        total_items: r.total_items,
        next_page_token: r.next_page_token,
        on_dialysis: Boolean(d.on_dialysis),
      };
    }
    this.allowed('clinical_information', clinical, data);

    say('\n5c. The emergency summary: every section in its window, each COMPLETE, EMPTY or UNAVAILABLE:');
    const summary = await call(home.medical, 'GetEmergencySummary', { access: this.access(consent, known), insured: patient });
    data = {};
    if (summary.allowed) {
      const s = summary.response;
      const sections = {};
      for (const name of ['qualification', 'visits', 'prescriptions', 'dispensings', 'operations', 'procedures', 'dialysis', 'checkup']) {
        sections[name] = (s[`${name}_section`] || {}).status;
        say(`    ${name.padEnd(14)} ${sections[name]}`);
      }
      data = { sections, on_dialysis: Boolean((s.dialysis || {}).on_dialysis) };
    }
    this.allowed('emergency_summary', summary, data);

    say('\n6. Refusals, as the terminal reads them from the status details:');
    this.refused(
      'refused_outside_area',
      `facility ${o['outside-facility']}, outside the activated areas, looks the patient up`,
      await call(outside.qualification, 'LookupQualification', { access: this.access(consent, known), insured: patient }),
      'AREA_NOT_ACTIVATED',
    );
    const mistyped = { ...patient, insurer_number: mistypedCheckDigit(patient.insurer_number) };
    this.refused(
      'refused_check_digit',
      `an insurer number with a wrong check digit (${mistyped.insurer_number})`,
      await call(home.qualification, 'LookupQualification', { access: this.access(consent, known), insured: mistyped }),
      'INSURER_NUMBER_CHECK_DIGIT',
      'insured.insurer_number',
    );
    this.refused(
      'refused_exemption_without_reason',
      'the exemption without a reason',
      await call(home.medical, 'GetDrugHistory', {
        access: this.access(
          { basis: 'CONSENT_BASIS_LIFE_OR_BODY_EXEMPTION', exemption_identification: 'EXEMPTION_IDENTIFICATION_FAMILY_INFORMATION' },
          known,
        ),
        insured: patient,
      }),
      'EXEMPTION_REASON_MISSING',
      'access.consent.exemption_reason',
    );
    this.refused(
      'refused_other_facility_search',
      `facility ${o['other-facility']} names the search made by ${o.facility}`,
      await call(other.medical, 'GetDrugHistory', { access: this.access(consent, bySearch), insured: patient }),
      'SEARCH_FACILITY_MISMATCH',
      'access.identification.search_id',
    );
    this.refused(
      'refused_search_without_insurer_or_address',
      'a search without insurer name or address',
      await call(home.qualification, 'SearchPatients', {
        access: this.access(consent),
        name: o.name,
        birth_date: o['birth-date'],
        sex,
      }),
      'INSURER_OR_ADDRESS_MISSING',
      'insurer_name',
    );
    this.refused(
      'refused_consent_kind',
      'drug history when the patient consented to check-ups only',
      await call(home.medical, 'GetDrugHistory', {
        access: this.access({ basis: 'CONSENT_BASIS_PATIENT_CONSENT', kinds: ['CONSENT_KIND_CHECKUPS'] }, known),
        insured: patient,
      }),
      'CONSENT_KIND_NOT_GIVEN',
      'access.consent.kinds',
    );
    this.refused(
      'refused_no_consent_basis',
      'no consent basis given',
      await call(home.qualification, 'LookupQualification', { access: this.access({}, known), insured: patient }),
      'CONSENT_BASIS_MISSING',
      'access.consent.basis',
    );
    for (const t of [home, other, outside]) {
      t.qualification.close();
      t.medical.close();
    }
  }
}

async function main() {
  let opts;
  let api;
  try {
    opts = options(process.argv.slice(2));
    api = loadApi(opts['proto-dir']);
  } catch (e) {
    say(`${e.message}\n${USAGE}`);
    return 2;
  }
  const scenario = new Scenario(opts);
  try {
    await scenario.run(api);
  } catch (e) {
    if (e instanceof UsageError) {
      say(e.message);
      return 2;
    }
    throw e;
  }
  const passed = scenario.steps - scenario.failures;
  process.stdout.write(`${JSON.stringify({ step: 'summary', passed, failed: scenario.failures })}\n`);
  say(`\n${passed} of ${scenario.steps} steps as expected`);
  return scenario.failures || scenario.steps === 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    say(`client failed: ${e.stack || e}`);
    process.exitCode = 1;
  },
);
