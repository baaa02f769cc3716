"""FHIR mapping without network: conformance resources, validation and OperationOutcomes.

Modules here may import ``fhirnet.criteria`` and fhir.resources (through ``resources.py``), never
Flask or requests. Absolute imports only: ``fhir`` is also the namespace of fhir.resources.

- :mod:`~fhirnet.fhir.resources` — the pinned FHIR release (R4B models) and :func:`parse`;
- :mod:`~fhirnet.fhir.datatypes` — code systems, Coding, CodeableConcept, Quantity as JSON;
- :mod:`~fhirnet.fhir.outcome` — validation problems (Issue) and their OperationOutcome;
- :mod:`~fhirnet.fhir.profiles` — the conformance resources of ``profiles/``, by canonical URL;
- :mod:`~fhirnet.fhir.served` — the CRF Questionnaire as served, answer ValueSets contained;
- :mod:`~fhirnet.fhir.capability` — what the FHIR endpoint serves: the CapabilityStatement;
- :mod:`~fhirnet.fhir.questionnaire` — QuestionnaireResponse validation: rules and the walk;
- :mod:`~fhirnet.fhir.questionnaire_answers` — answer values read; one answer checked;
- :mod:`~fhirnet.fhir.questionnaire_enable_when` — enableWhen on the walk's nodes;
- :mod:`~fhirnet.fhir.questionnaire_index` — the CRF Questionnaire indexed for validation;
- :mod:`~fhirnet.fhir.extract` — QuestionnaireResponse → domain requests, and the code tables;
- :mod:`~fhirnet.fhir.build` — domain results → the transaction Bundle fhirnet writes;
- :mod:`~fhirnet.fhir.observations` — one exam's lesions, measurements and response;
- :mod:`~fhirnet.fhir.risk_observations` — the risk Observations of a form's ``risk`` group;
- :mod:`~fhirnet.fhir.report` — the DiagnosticReport of an exam and its Provenance;
- :mod:`~fhirnet.fhir.identifiers` — business identifiers and how entries address resources;
- :mod:`~fhirnet.fhir.audit` — AuditEvents of fhirnet's interactions with patient data.
"""
