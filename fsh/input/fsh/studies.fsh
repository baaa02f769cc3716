// Trials: a study's definition (ResearchStudy), its enrolment Group and its subjects
// (ResearchSubject), as fhirnet/fhir/studies.py writes them (docs/trials.md "Studies and
// enrolment"). R4 names; R5 renames individual → subject, assignedArm → assignedComparisonGroup.

Extension: StudyCriteria
Id: study-criteria
Title: "Study response criteria"
Description: "The response criteria the study's imaging is assessed with (fhirnet's codes: recist-1.1, irecist, choi, percist-1.0)."
Context: ResearchStudy
* insert ProfileMetadata
* value[x] only code
* value[x] 1..1

Extension: StudyOptions
Id: study-options
Title: "Study endpoint options"
Description: "The endpoint options the study fixes (docs/trials.md): one sub-extension per option given."
Context: ResearchStudy
* insert ProfileMetadata
* extension contains
    confirmationRequired 0..1 and
    confirmationMinDays 0..1 and
    sdMinDays 0..1 and
    maxNeBetween 0..1 and
    acceptSdBetween 0..1
* extension[confirmationRequired].value[x] only boolean
* extension[confirmationMinDays].value[x] only integer
* extension[sdMinDays].value[x] only integer
* extension[maxNeBetween].value[x] only integer
* extension[acceptSdBetween].value[x] only boolean

Extension: StudyReader
Id: study-reader
Title: "Study reader"
Description: "A reader of the study's images: who, in which role (central, local, adjudicator), under which label."
Context: ResearchStudy
* insert ProfileMetadata
* extension contains reader 1..1 and role 1..1 and label 1..1
* extension[reader].value[x] only Reference(Practitioner or PractitionerRole)
* extension[role].value[x] only code
* extension[label].value[x] only string

Extension: StudyVisit
Id: study-visit
Title: "Study visit"
Description: "A protocol visit: its name, its target study day (day 1 = the reference date, no day 0) and the window either side."
Context: ResearchStudy
* insert ProfileMetadata
* extension contains visit 1..1 and day 1..1 and windowDays 1..1
* extension[visit].value[x] only string
* extension[day].value[x] only integer
* extension[windowDays].value[x] only integer

Extension: ResearchSubjectSite
Id: research-subject-site
Title: "Research subject site"
Description: "The study site that enrolled the subject: its id among the study's sites."
Context: ResearchSubject
* insert ProfileMetadata
* value[x] only Identifier
* value[x] 1..1

Extension: ResearchSubjectAdjudication
Id: research-subject-adjudication
Title: "Research subject adjudication"
Description: "Which central reader's read counts for this subject when the study's central readers disagree (docs/trials.md \"Adjudication\"): the accepted reader's label, that reader, the adjudicator and when it was decided. The resource's version history keeps earlier decisions."
Context: ResearchSubject
* insert ProfileMetadata
* extension contains accepted 1..1 and reader 1..1 and by 1..1 and recorded 1..1
* extension[accepted].value[x] only string
* extension[accepted] ^short = "The accepted central reader's label in the study"
* extension[reader].value[x] only Reference(Practitioner or PractitionerRole)
* extension[reader] ^short = "The accepted central reader: the study's reference"
* extension[by].value[x] only Reference(Practitioner or PractitionerRole)
* extension[by] ^short = "The adjudicator"
* extension[recorded].value[x] only dateTime
* extension[recorded] ^short = "When the decision was recorded"

Profile: FhirnetResearchStudy
Parent: ResearchStudy
Id: fhirnet-research-study
Title: "fhirnet research study"
Description: "A study as fhirnet defines it: its id, title, arms, sites, readers, criteria, options and schedule, and its enrolment Group."
* insert ProfileMetadata
// criteria is always written; 0..1 here because Medplum 4.5.2 (the independent validator), whose
// R4 ResearchStudy and ResearchSubject definitions carry R5 elements, does not match extension
// slices on them and reports a required slice as missing.
* extension contains
    StudyCriteria named criteria 0..1 MS and
    StudyOptions named options 0..1 MS and
    StudyReader named reader 0..* MS and
    StudyVisit named visit 0..* MS
* identifier 1..1 MS
* identifier.system 1..1
* identifier.system = "https://fhirnet.dev/fhir/sid/research-study" (exactly)
* identifier.value 1..1
* title 1..1 MS
* enrollment 1..1 MS
* enrollment only Reference(EnrolmentGroup)
* site MS
* site ^short = "A logical reference: the site's id under https://fhirnet.dev/fhir/sid/research-study/<studyId>/site"
* arm 1..* MS
* arm.name ^short = "The arm code (SDTM ARMCD): what ResearchSubject.assignedArm holds"
* arm.description ^short = "The arm name (SDTM ARM)"

Profile: EnrolmentGroup
Parent: Group
Id: enrolment-group
Title: "Enrolment group"
Description: "The patients enrolled in a study (ResearchStudy.enrollment): withdrawn ones stay, inactive, with the end of their period."
* insert ProfileMetadata
* identifier 1..1 MS
* identifier.system = "https://fhirnet.dev/fhir/sid/enrolment-group" (exactly)
* identifier.value 1..1
* type = #person (exactly)
* actual = true (exactly)
* member MS
* member.entity only Reference(Patient)
* member.period 1..1 MS
* member.period.start 1..1
* member.inactive MS

Profile: FhirnetResearchSubject
Parent: ResearchSubject
Id: fhirnet-research-subject
Title: "fhirnet research subject"
Description: "One enrolled subject: the trial's subject number (never a hospital identifier), the patient, the arm, the site, study day 1 and the withdrawal date."
* insert ProfileMetadata
// always written; 0..1 for Medplum 4.5.2, as the study's criteria slice
* extension contains
    ResearchSubjectSite named site 0..1 MS and
    ResearchSubjectAdjudication named adjudication 0..1 MS
* identifier 1..1 MS
* identifier.system 1..1
* identifier.system ^short = "https://fhirnet.dev/fhir/sid/research-study/<studyId>/subject"
* identifier.value 1..1
* status MS
* period 1..1 MS
* period.start 1..1
* period.start ^short = "The reference date: treatment start or randomization, study day 1"
* period.end ^short = "The withdrawal date"
* study only Reference(FhirnetResearchStudy)
* individual MS
* assignedArm 1..1 MS

Instance: example-study-group
InstanceOf: EnrolmentGroup
Title: "Example enrolment group"
Usage: #example
* identifier.system = "https://fhirnet.dev/fhir/sid/enrolment-group"
* identifier.value = "NET-01"
* type = #person
* actual = true
* name = "Enrolment of study NET-01"
* quantity = 2
* member[0].entity = Reference(Patient/small-bowel-net-prrt)
* member[0].period.start = "2025-01-14"
* member[1].entity = Reference(Patient/pancreatic-net-everolimus)
* member[1].period.start = "2025-01-21"

Instance: example-study
InstanceOf: FhirnetResearchStudy
Title: "Example study"
Usage: #example
* extension[criteria].valueCode = #recist-1.1
* extension[options].extension[confirmationRequired].valueBoolean = true
* extension[options].extension[sdMinDays].valueInteger = 42
* extension[reader].extension[reader].valueReference = Reference(Practitioner/reader-1)
* extension[reader].extension[role].valueCode = #central
* extension[reader].extension[label].valueString = "RADIOLOGIST 1"
* extension[visit].extension[visit].valueString = "WEEK 8"
* extension[visit].extension[day].valueInteger = 57
* extension[visit].extension[windowDays].valueInteger = 7
* identifier.system = "https://fhirnet.dev/fhir/sid/research-study"
* identifier.value = "NET-01"
* title = "Lutetium versus octreotide in midgut NET"
* status = #active
* enrollment = Reference(example-study-group)
* site.identifier.system = "https://fhirnet.dev/fhir/sid/research-study/NET-01/site"
* site.identifier.value = "001"
* site.display = "Uppsala University Hospital"
* arm[0].name = "A"
* arm[0].description = "177Lu-DOTATATE"
* arm[1].name = "B"
* arm[1].description = "Octreotide LAR"

Instance: example-study-subject
InstanceOf: FhirnetResearchSubject
Title: "Example research subject"
Usage: #example
* extension[site].valueIdentifier.system = "https://fhirnet.dev/fhir/sid/research-study/NET-01/site"
* extension[site].valueIdentifier.value = "001"
* identifier.system = "https://fhirnet.dev/fhir/sid/research-study/NET-01/subject"
* identifier.value = "001-0001"
* status = #on-study
* period.start = "2025-01-14"
* study = Reference(example-study)
* individual = Reference(Patient/small-bowel-net-prrt)
* assignedArm = "A"

Instance: example-study-subject-adjudicated
InstanceOf: FhirnetResearchSubject
Title: "Example adjudicated research subject"
Description: "A subject whose two central readers disagreed: the adjudicator accepted RADIOLOGIST 1's read."
Usage: #example
* extension[site].valueIdentifier.system = "https://fhirnet.dev/fhir/sid/research-study/NET-01/site"
* extension[site].valueIdentifier.value = "001"
* extension[adjudication].extension[accepted].valueString = "RADIOLOGIST 1"
* extension[adjudication].extension[reader].valueReference = Reference(Practitioner/reader-1)
* extension[adjudication].extension[by].valueReference = Reference(Practitioner/adjudicator-1)
* extension[adjudication].extension[recorded].valueDateTime = "2025-06-02T09:30:00+02:00"
* identifier.system = "https://fhirnet.dev/fhir/sid/research-study/NET-01/subject"
* identifier.value = "001-0002"
* status = #on-study
* period.start = "2025-01-21"
* study = Reference(example-study)
* individual = Reference(Patient/pancreatic-net-everolimus)
* assignedArm = "B"
