// Shared rules of the profiles for what fhirnet writes.

RuleSet: ProfileMetadata
* ^experimental = false
* ^publisher = "fhirnet"

RuleSet: NotUsed(path)
* {path} 0..0

// Every Observation fhirnet writes: about one patient, at the imaging exam's date, derived from
// the QuestionnaireResponse (and, for computed figures, from other Observations).
RuleSet: DerivedObservation
* status MS
* status ^short = "final (amended/corrected when the QuestionnaireResponse is corrected)"
* subject 1..1 MS
* subject only Reference(Patient)
* subject ^short = "The patient (QuestionnaireResponse.subject)"
* effective[x] 1..1 MS
* effective[x] only dateTime
* effective[x] ^short = "Date of the imaging exam (CRF item imaging-date)"
* derivedFrom 1..* MS
* derivedFrom ^short = "The QuestionnaireResponse, and the Observations the value was computed from"
* insert NotUsed(specimen)
* insert NotUsed(device)
* insert NotUsed(referenceRange)

RuleSet: ImagingCategory
* category 1..* MS
* category ^slicing.discriminator.type = #pattern
* category ^slicing.discriminator.path = "$this"
* category ^slicing.rules = #open
* category ^slicing.description = "Sliced by the imaging category"
* category contains imaging 1..1 MS
* category[imaging] = $OBSCAT#imaging

RuleSet: ComponentSlicing
* component ^slicing.discriminator.type = #pattern
* component ^slicing.discriminator.path = "code"
* component ^slicing.rules = #open
* component ^slicing.description = "Sliced by component code"

// A component slice with a quantity value in a fixed UCUM unit.
RuleSet: QuantityComponent(slice, unit)
* component[{slice}].value[x] 1..1
* component[{slice}].value[x] only Quantity
* component[{slice}].valueQuantity = $UCUM#{unit}
* component[{slice}].valueQuantity.value 1..1

RuleSet: CodedComponent(slice, valueset)
* component[{slice}].value[x] 1..1
* component[{slice}].value[x] only CodeableConcept
* component[{slice}].valueCodeableConcept from {valueset} (required)

RuleSet: TypedComponent(slice, type)
* component[{slice}].value[x] 1..1
* component[{slice}].value[x] only {type}

RuleSet: Reasons
* note MS
* note ^short = "Reasons: one annotation per sentence explaining the result from the numbers"
* note.text ^short = "One reason sentence (assessment API 'reasons')"

Invariant: fhirnet-value-or-absent
Description: "The Observation has a value or says why it is absent."
Expression: "value.exists() or dataAbsentReason.exists()"
Severity: #error
