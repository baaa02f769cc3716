// Lesions and their measurements (aligned with mCODE STU4 Tumor; structured to satisfy TumorSize).

Extension: LesionNodal
Id: lesion-nodal
Title: "Lesion is a lymph node"
Description: "The CRF item lesion-nodal: the lesion is a lymph node, so its size is the short axis and, for the two-per-organ rule, all nodal lesions form the organ 'lymph nodes' whatever their location."
* insert ProfileMetadata
* ^context[+].type = #element
* ^context[=].expression = "BodyStructure"
* value[x] 1..1
* value[x] only boolean

Profile: Lesion
Parent: BodyStructure
Id: lesion
Title: "CRF lesion"
Description: "A lesion followed by the imaging case-report form, identified by its CRF lesion-id (stable across exams, unique per patient) and its location. Structured like mCODE STU4 Tumor (mcode-tumor): a persistent identifier with type BodyStructure and use usual, location 1..1, one resource per lesion tracked over time. The package does not depend on mCODE: the profile derives from BodyStructure, aligns by structure and codes, and is not verified against mcode-tumor (fsh/README.md, modelling decision 3)."
* insert ProfileMetadata
* extension contains LesionNodal named nodal 1..1 MS
// The slice's url fixed in the snapshot too: validators that match extension slices by the
// snapshot's url value (Medplum 4.x) otherwise find no `nodal` extension.
* extension[nodal].url = "https://fhirnet.dev/fhir/StructureDefinition/lesion-nodal" (exactly)
* identifier 1..* MS
* identifier ^slicing.discriminator.type = #value
* identifier ^slicing.discriminator.path = "system"
* identifier ^slicing.rules = #open
* identifier ^slicing.description = "Sliced by identifier system"
* identifier contains crfLesionId 1..1 MS
* identifier[crfLesionId] ^short = "CRF lesion-id (e.g. T1), unique per patient"
* identifier[crfLesionId].use 1..1
* identifier[crfLesionId].use = #usual
* identifier[crfLesionId].type 1..1
* identifier[crfLesionId].type = $RESTYPE#BodyStructure
* identifier[crfLesionId].system 1..1
* identifier[crfLesionId].system = $lesion-id-system (exactly)
* identifier[crfLesionId].value 1..1
* morphology MS
* morphology ^comment = "When known, SNOMED CT 1240414004 'Malignant neoplasm (morphologic abnormality)' as mCODE Tumor requires (TumorMorphologyCodeVS)."
* location 1..1 MS
* location from LesionLocationVS (required)
* location ^short = "CRF lesion-location"
* patient MS
* patient only Reference(Patient)

Invariant: fhirnet-one-size
Description: "A lesion is measured either by its longest diameter or, for a lymph node, by its short axis, not both: a measurement with a short axis has no longest-diameter value."
Expression: "component.where(code.coding.exists(system = 'http://loinc.org' and code = '33728-7') and value.exists()).empty() or component.where(code.coding.exists(system = 'http://snomed.info/sct' and code = '103340004')).empty()"
Severity: #error

Invariant: fhirnet-too-small-no-size
Description: "A lesion that is too small to measure has no measured diameter (RECIST 1.1 uses 5 mm for it in the sum)."
Expression: "component.where(code.coding.exists(system = 'https://fhirnet.dev/fhir/CodeSystem/observation-codes' and code = 'too-small-to-measure') and value.ofType(boolean) = true).exists() implies component.where(code.coding.exists((system = 'http://loinc.org' and code = '33728-7') or (system = 'http://snomed.info/sct' and code = '103340004')) and value.exists()).empty()"
Severity: #error

Invariant: fhirnet-component-value-or-absent
Description: "The component has a value or says why it is absent."
Expression: "value.exists() or dataAbsentReason.exists()"
Severity: #error

Invariant: fhirnet-measured
Description: "A lesion measurement has at least one component, or says why nothing was measured."
Expression: "component.exists() or dataAbsentReason.exists()"
Severity: #error

Profile: LesionMeasurement
Parent: Observation
Id: lesion-measurement
Title: "Target lesion measurement"
Description: "The measurements of one target lesion at one exam: longest diameter (short axis for lymph nodes), CT mean density, SUVmax and SULpeak as components. The lesion is the focus (a CRF lesion BodyStructure, also identified by its CRF lesion-id) and its location is the bodySite. Structured to satisfy mCODE STU4 TumorSize (mcode-tumor-size): code LOINC 21889-1, the longest-dimension component LOINC 33728-7 1..1 in mm (with dataAbsentReason when there is no longest diameter: not-performed for a lymph node, which RECIST 1.1 measures by its short axis, unknown for a lesion too small to measure or not evaluable), focus on the lesion, no value[x]; the short axis, density and uptake, which TumorSize does not name, are further components of its open slicing. fhirnet does not claim mcode-tumor-size in meta.profile (the method is a project code, the focus a fhirnet lesion rather than an mcode-tumor)."
* insert ProfileMetadata
* insert DerivedObservation
* insert ImagingCategory
* obeys fhirnet-one-size and fhirnet-too-small-no-size and fhirnet-measured
* code = $LNC#21889-1
* code MS
* focus 1..1 MS
* focus only Reference(Lesion)
* focus ^short = "The lesion (CRF lesion BodyStructure)"
* focus.reference 1..1 MS
* focus.identifier 1..1 MS
* focus.identifier ^short = "CRF lesion-id of the lesion, so the Observation names it without resolving the reference"
* focus.identifier.system 1..1
* focus.identifier.system = $lesion-id-system (exactly)
* focus.identifier.value 1..1
* bodySite 1..1 MS
* bodySite from LesionLocationVS (required)
* bodySite ^short = "CRF lesion-location"
* method MS
* method from ImagingProcedureVS (required)
* method ^short = "The procedure the size was measured on, when the exam names a single anatomical one"
* method ^comment = "A SNOMED CT coding from ConceptMap imaging-procedure-to-snomed (e.g. 77477000 CT) may be added, as mCODE TumorSizeMethodVS expects."
* derivedFrom only Reference(QuestionnaireResponse)
* insert NotUsed(value[x])
* insert NotUsed(hasMember)
* insert NotUsed(interpretation)
* dataAbsentReason MS
* insert ComponentSlicing
* component MS
* component contains
    longestDiameter 1..1 MS and
    shortAxis 0..1 MS and
    tooSmallToMeasure 0..1 MS and
    meanDensity 0..1 MS and
    suvMax 0..1 MS and
    sulPeak 0..1 MS
* component[longestDiameter] ^short = "Longest diameter of a non-nodal lesion (CRF lesion-size), mm; 0 when it disappeared; dataAbsentReason when there is none"
* component[longestDiameter] obeys fhirnet-component-value-or-absent
* component[longestDiameter].code = $LNC#33728-7
* component[longestDiameter].value[x] only Quantity
* component[longestDiameter].valueQuantity = $UCUM#mm
* component[longestDiameter].valueQuantity.value 1..1
* component[longestDiameter].dataAbsentReason ^short = "not-performed for a lymph node (short axis measured instead), unknown when too small to measure or not evaluable"
* component[longestDiameter].valueQuantity ^minValueQuantity = 0 'mm'
* component[longestDiameter].valueQuantity ^maxValueQuantity = 1000 'mm'
* component[shortAxis] ^short = "Short axis of a nodal lesion (CRF lesion-size), mm"
* component[shortAxis].code = $SCT#103340004
* insert QuantityComponent(shortAxis, mm)
* component[shortAxis].valueQuantity ^minValueQuantity = 0 'mm'
* component[shortAxis].valueQuantity ^maxValueQuantity = 1000 'mm'
* component[tooSmallToMeasure] ^short = "CRF lesion-too-small: faintly seen, too small to measure"
* component[tooSmallToMeasure].code = $obs#too-small-to-measure
* insert TypedComponent(tooSmallToMeasure, boolean)
* component[meanDensity] ^short = "CRF lesion-density: mean attenuation on CT, Hounsfield units"
* component[meanDensity].code = $DCM#112181
* insert QuantityComponent(meanDensity, "[hnsf'U]")
* component[meanDensity].valueQuantity ^minValueQuantity = -1024 $UCUM#"[hnsf'U]"
* component[meanDensity].valueQuantity ^maxValueQuantity = 3071 $UCUM#"[hnsf'U]"
* component[suvMax] ^short = "CRF lesion-suv-max: SUVmax (body weight)"
* component[suvMax].code = $NCIT#C95012
* insert QuantityComponent(suvMax, g/ml{SUVbw})
* component[suvMax].valueQuantity ^minValueQuantity = 0 'g/ml{SUVbw}'
* component[sulPeak] ^short = "CRF lesion-sul-peak: SULpeak (lean body mass), PERCIST"
* component[sulPeak].code = $NCIT#C181547
* insert QuantityComponent(sulPeak, g/ml{SUVlbm})
* component[sulPeak].valueQuantity ^minValueQuantity = 0 'g/ml{SUVlbm}'

Profile: SumOfDiameters
Parent: Observation
Id: sum-of-diameters
Title: "Sum of diameters"
Description: "Sum of the diameters of the baseline target lesions at one exam (CDISC SUMDIAM, NCIt C96631): longest diameters of non-nodal lesions plus short axes of nodal lesions, 5 mm for a lesion too small to measure, 0 for a disappeared one (RECIST 1.1, iRECIST, Choi). Unknown (dataAbsentReason) when a target lesion is not evaluable."
* insert ProfileMetadata
* insert DerivedObservation
* insert ImagingCategory
* obeys fhirnet-value-or-absent
* code = $NCIT#C96631
* code MS
* value[x] MS
* value[x] only Quantity
* valueQuantity = $UCUM#mm
* valueQuantity.value 1..1
* valueQuantity ^minValueQuantity = 0 'mm'
* dataAbsentReason MS
* dataAbsentReason ^short = "unknown when a target lesion is not evaluable (assessment API sumMm = null)"
* derivedFrom only Reference(QuestionnaireResponse or LesionMeasurement)
* insert NotUsed(hasMember)
* insert NotUsed(component)
