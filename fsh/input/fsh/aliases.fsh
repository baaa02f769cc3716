// Code systems (URIs as used by mCODE STU4 and DICOM PS3.16; see fsh/README.md "Codes").
Alias: $SCT = http://snomed.info/sct
Alias: $LNC = http://loinc.org
Alias: $UCUM = http://unitsofmeasure.org
Alias: $NCIT = http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl
Alias: $DCM = http://dicom.nema.org/resources/ontology/DCM
Alias: $OBSCAT = http://terminology.hl7.org/CodeSystem/observation-category
Alias: $V2-0074 = http://terminology.hl7.org/CodeSystem/v2-0074
Alias: $V2-0136 = http://terminology.hl7.org/CodeSystem/v2-0136
Alias: $DAR = http://terminology.hl7.org/CodeSystem/data-absent-reason
Alias: $PROVAGENT = http://terminology.hl7.org/CodeSystem/provenance-participant-type
Alias: $RESTYPE = http://hl7.org/fhir/resource-types
Alias: $ITEMCTRL = http://hl7.org/fhir/questionnaire-item-control

// Core R4 extensions used by the Questionnaire (bound by URL, as SUSHI's offline quirk requires).
Alias: $maxOccurs = http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs
Alias: $unit = http://hl7.org/fhir/StructureDefinition/questionnaire-unit
Alias: $minValue = http://hl7.org/fhir/StructureDefinition/minValue
Alias: $maxValue = http://hl7.org/fhir/StructureDefinition/maxValue
Alias: $itemControl = http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl

// Project code systems and identifier systems, for codes in instances and patterns.
Alias: $obs = https://fhirnet.dev/fhir/CodeSystem/observation-codes
Alias: $cs-assessment-type = https://fhirnet.dev/fhir/CodeSystem/assessment-type
Alias: $cs-imaging-procedure = https://fhirnet.dev/fhir/CodeSystem/imaging-procedure
Alias: $cs-previous-treatment = https://fhirnet.dev/fhir/CodeSystem/previous-treatment
Alias: $cs-therapy-type = https://fhirnet.dev/fhir/CodeSystem/therapy-type
Alias: $cs-non-target-status = https://fhirnet.dev/fhir/CodeSystem/non-target-status
Alias: $cs-intratumoral-nodules = https://fhirnet.dev/fhir/CodeSystem/intratumoral-nodules
Alias: $cs-primary-site = https://fhirnet.dev/fhir/CodeSystem/primary-site
Alias: $cs-embryologic-origin = https://fhirnet.dev/fhir/CodeSystem/embryologic-origin
Alias: $cs-functional-status = https://fhirnet.dev/fhir/CodeSystem/functional-status
Alias: $cs-differentiation = https://fhirnet.dev/fhir/CodeSystem/differentiation
Alias: $cs-who-net-grade = https://fhirnet.dev/fhir/CodeSystem/who-net-grade
Alias: $cs-krenning-score = https://fhirnet.dev/fhir/CodeSystem/krenning-score
Alias: $cs-prrt-eligibility = https://fhirnet.dev/fhir/CodeSystem/prrt-eligibility
Alias: $lesion-id-system = https://fhirnet.dev/fhir/sid/crf-lesion-id
