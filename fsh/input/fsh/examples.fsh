// One follow-up exam (RECIST 1.1) of a patient with a small-bowel NET, as fhirnet would write it.
// Instance ids start with "example-": fsh/tools/fhirpkg.py publishes them in profiles/example/.
// Baseline 2025-01-15: T1 liver 32 mm, T2 mesenteric node 18 mm short axis (sum 50 mm).
// Follow-up 2025-03-20: T1 26 mm, T2 15 mm (sum 41 mm, -18 %): SD.

RuleSet: ExampleObservation
* status = #final
* subject = Reference(Patient/example-patient)
* effectiveDateTime = "2025-03-20"
* derivedFrom[+] = Reference(QuestionnaireResponse/example-follow-up)

Instance: example-lesion-t1
InstanceOf: Lesion
Usage: #example
Title: "Example: target lesion T1 (liver)"
* extension[nodal].valueBoolean = false
* identifier[crfLesionId].value = "T1"
* location = $SCT#10200004 "Liver"
* patient = Reference(Patient/example-patient)

Instance: example-lesion-t2
InstanceOf: Lesion
Usage: #example
Title: "Example: target lesion T2 (mesenteric lymph node)"
* extension[nodal].valueBoolean = true
* identifier[crfLesionId].value = "T2"
* location = $SCT#279795009 "Lymph node of mesentery"
* patient = Reference(Patient/example-patient)

Instance: example-measurement-t1
InstanceOf: LesionMeasurement
Usage: #example
Title: "Example: T1 measured on CT"
* insert ExampleObservation
* focus = Reference(BodyStructure/example-lesion-t1)
* focus.identifier.value = "T1"
* bodySite = $SCT#10200004 "Liver"
* method.coding[0] = $cs-imaging-procedure#CT "Contrast-enhanced CT"
* method.coding[1] = $SCT#77477000 "Computerized axial tomography (procedure)"
* component[longestDiameter].valueQuantity = 26 'mm' "mm"
* component[meanDensity].valueQuantity = 85 $UCUM#"[hnsf'U]" "HU"

Instance: example-measurement-t2
InstanceOf: LesionMeasurement
Usage: #example
Title: "Example: T2 (node) measured on CT"
* insert ExampleObservation
* focus = Reference(BodyStructure/example-lesion-t2)
* focus.identifier.value = "T2"
* bodySite = $SCT#279795009 "Lymph node of mesentery"
* method = $cs-imaging-procedure#CT "Contrast-enhanced CT"
* component[longestDiameter].dataAbsentReason = $DAR#not-performed
* component[shortAxis].valueQuantity = 15 'mm' "mm"

Instance: example-sum-of-diameters
InstanceOf: SumOfDiameters
Usage: #example
Title: "Example: sum of diameters 41 mm"
* insert ExampleObservation
* derivedFrom[+] = Reference(Observation/example-measurement-t1)
* derivedFrom[+] = Reference(Observation/example-measurement-t2)
* valueQuantity = 41 'mm' "mm"

Instance: example-response-assessment
InstanceOf: ResponseAssessment
Usage: #example
Title: "Example: RECIST 1.1 stable disease"
* insert ExampleObservation
* derivedFrom[+] = Reference(Observation/example-sum-of-diameters)
* method = $NCIT#C124415 "Response Evaluation Criteria in Solid Tumors Version 1.1"
* valueCodeableConcept = $NCIT#C18213 "Stable Disease"
* component[targetResponse].valueCodeableConcept = $NCIT#C18213 "Stable Disease"
* component[nonTargetResponse].valueCodeableConcept = $NCIT#C96700 "Non Complete Response/Non Progressive Disease"
* component[newLesions].valueBoolean = false
* component[baselineDate].valueDateTime = "2025-01-15"
* component[baselineSum].valueQuantity = 50 'mm' "mm"
* component[nadirSum].valueQuantity = 50 'mm' "mm"
* component[nadirDate].valueDateTime = "2025-01-15"
* component[changeFromBaseline].valueQuantity = -18.0 '%' "%"
* component[changeFromNadir].valueQuantity = -18.0 '%' "%"
* component[readerResponseVsBaseline].valueCodeableConcept = $NCIT#C18213 "Stable Disease"
* component[readerResponseVsNadir].valueCodeableConcept = $NCIT#C18213 "Stable Disease"
* component[readerDiscordant].valueBoolean = false
* note[+].text = "sum of diameters 41.0 mm is 18.0% below baseline 50.0 mm: neither PR (>= 30% decrease) nor PD"

Instance: example-cancer-disease-status
InstanceOf: CancerDiseaseStatus
Usage: #example
Title: "Example: disease status stable"
* status = #final
* subject = Reference(Patient/example-patient)
* effectiveDateTime = "2025-03-20"
* derivedFrom[+] = Reference(Observation/example-response-assessment)
* valueCodeableConcept = $SCT#359746009 "Patient's condition stable (finding)"

Instance: example-who-grade
InstanceOf: WhoGrade
Usage: #example
Title: "Example: WHO grade G2"
* insert ExampleObservation
* method = $NCIT#C189619 "IARC and WHO Classification of Tumors of Neuroendocrine Neoplasms 2018"
* valueCodeableConcept = $cs-who-net-grade#G2 "G2 NET"
* component[ki67].valueQuantity = 5 '%' "%"
* component[mitoticCount].valueQuantity = 1 '/(2.mm2)' "per 2 mm²"
* component[differentiation].valueCodeableConcept = $cs-differentiation#well-differentiated "Well differentiated"
* note[+].text = "Ki-67 5% is in 3-20%: G2 (mitotic count 1 per 2 mm² alone would be G1; the higher grade applies)"

Instance: example-embryologic-origin
InstanceOf: EmbryologicOrigin
Usage: #example
Title: "Example: midgut origin"
* insert ExampleObservation
* bodySite.coding[0] = $cs-primary-site#jejunum-ileum "Jejunum / ileum"
* bodySite.coding[1] = $SCT#30315005 "Small intestine"
* valueCodeableConcept = $cs-embryologic-origin#midgut "Midgut"

Instance: example-prrt-eligibility
InstanceOf: PrrtEligibility
Usage: #example
Title: "Example: eligible for PRRT"
* insert ExampleObservation
* derivedFrom[+] = Reference(Observation/example-who-grade)
* valueCodeableConcept = $cs-prrt-eligibility#eligible "Eligible for PRRT"
* component[krenningScore].valueCodeableConcept = $cs-krenning-score#3 "3 - uptake above liver"
* component[whoGrade].valueCodeableConcept = $cs-who-net-grade#G2 "G2 NET"
* component[differentiation].valueCodeableConcept = $cs-differentiation#well-differentiated "Well differentiated"
* note[+].text = "well-differentiated G2 NET with Krenning score 3 (> 2): eligible"

Instance: example-imaging-recommendation
InstanceOf: ImagingRecommendation
Usage: #example
Title: "Example: midgut imaging recommendation"
* insert ExampleObservation
* derivedFrom[+] = Reference(Observation/example-embryologic-origin)
* component[recommendedFirst].valueCodeableConcept = $cs-imaging-procedure#DOPA-PET "DOPA PET"
* component[recommendedSecond][+].valueCodeableConcept = $cs-imaging-procedure#SSTR-PET "SSTR PET"
* component[recommendedSecond][+].valueCodeableConcept = $cs-imaging-procedure#SSTR-SPECT "SSTR scintigraphy / SPECT"
* note[+].text = "midgut NET: 18F-DOPA PET first, then SSTR PET or SSTR scintigraphy (Table 2)"

Instance: example-report
InstanceOf: ImagingResponseReport
Usage: #example
Title: "Example: imaging response report"
* status = #final
* subject = Reference(Patient/example-patient)
* effectiveDateTime = "2025-03-20"
* issued = "2025-03-21T09:30:00+01:00"
* result[+] = Reference(Observation/example-measurement-t1)
* result[+] = Reference(Observation/example-measurement-t2)
* result[+] = Reference(Observation/example-sum-of-diameters)
* result[+] = Reference(Observation/example-response-assessment)
* result[+] = Reference(Observation/example-cancer-disease-status)
* result[+] = Reference(Observation/example-who-grade)
* result[+] = Reference(Observation/example-embryologic-origin)
* result[+] = Reference(Observation/example-prrt-eligibility)
* result[+] = Reference(Observation/example-imaging-recommendation)
* conclusion = "RECIST 1.1: SD. Sum of diameters 41.0 mm is 18.0% below baseline 50.0 mm: neither PR (>= 30% decrease) nor PD."
* conclusionCode = $NCIT#C18213 "Stable Disease"

Instance: example-fhirnet-device
InstanceOf: Device
Usage: #inline
* deviceName[+].name = "fhirnet"
* deviceName[=].type = #user-friendly-name
* version[+].value = "0.1.0"

Instance: example-provenance
InstanceOf: AssessmentProvenance
Usage: #example
Title: "Example: provenance of the written resources"
* contained[+] = example-fhirnet-device
* target[+] = Reference(DiagnosticReport/example-report)
* target[+] = Reference(Observation/example-response-assessment)
* recorded = "2025-03-21T09:30:00+01:00"
* entity[source].what = Reference(QuestionnaireResponse/example-follow-up)
* agent[service].who = Reference(example-fhirnet-device)
