// The report that gathers an exam's results, and the provenance of everything fhirnet writes.

Profile: ImagingResponseReport
Parent: DiagnosticReport
Id: imaging-response-report
Title: "Imaging response report"
Description: "The DiagnosticReport fhirnet writes per accepted case-report form: the Observations it derived as results, the computed overall response as conclusionCode (absent at baseline) and the reasons as conclusion. Code LOINC 18748-4 'Diagnostic imaging report' (DICOM CID 7000); category HL7 v2 table 0074 RAD (radiology)."
* insert ProfileMetadata
* status MS
* category 1..* MS
* category ^slicing.discriminator.type = #pattern
* category ^slicing.discriminator.path = "$this"
* category ^slicing.rules = #open
* category ^slicing.description = "Sliced by the radiology category"
* category contains radiology 1..1 MS
* category[radiology] = $V2-0074#RAD
* code = $LNC#18748-4
* code MS
* subject 1..1 MS
* subject only Reference(Patient)
* effective[x] 1..1 MS
* effective[x] only dateTime
* effective[x] ^short = "Date of the imaging exam (CRF imaging-date)"
* issued MS
* resultsInterpreter MS
* resultsInterpreter ^short = "The reader (QuestionnaireResponse.author), when it is a Practitioner or Organization"
* result 1..* MS
* result only Reference(LesionMeasurement or SumOfDiameters or ResponseAssessment or CancerDiseaseStatus or WhoGrade or EmbryologicOrigin or PrrtEligibility or ImagingRecommendation)
* conclusion MS
* conclusion ^short = "The reasons of the computed response, as text"
* conclusionCode 0..1 MS
* conclusionCode from ResponseCategoryVS (required)
* conclusionCode ^short = "The computed overall response (absent for a baseline exam)"

Profile: AssessmentProvenance
Parent: Provenance
Id: assessment-provenance
Title: "Assessment provenance"
Description: "Provenance of the resources fhirnet writes for one case-report form: the QuestionnaireResponse is the source entity and the fhirnet service (a Device carrying the service version) is the assembler agent."
* insert ProfileMetadata
* target MS
* target ^short = "Every resource written for this QuestionnaireResponse"
* recorded MS
* entity 1..* MS
* entity ^slicing.discriminator.type = #value
* entity ^slicing.discriminator.path = "role"
* entity ^slicing.rules = #open
* entity ^slicing.description = "Sliced by role"
* entity contains source 1..1 MS
* entity[source].role = #source
* entity[source].what only Reference(QuestionnaireResponse)
* entity[source].what MS
* agent MS
* agent ^slicing.discriminator.type = #pattern
* agent ^slicing.discriminator.path = "type"
* agent ^slicing.rules = #open
* agent ^slicing.description = "Sliced by agent type"
* agent contains service 1..1 MS
* agent[service].type 1..1
* agent[service].type = $PROVAGENT#assembler
* agent[service].who only Reference(Device)
* agent[service].who ^short = "The fhirnet service: a Device whose version is the service version"
