// The imaging case-report form (shared/spec/crf.md). linkIds, types and cardinalities follow the
// data dictionary; the only departure is that lesion items repeated in the non-target and new
// lesion groups are prefixed with their group's linkId, because FHIR R4 requires linkIds to be
// unique within a Questionnaire (invariant que-2). See fsh/README.md.

RuleSet: Question(linkId, type, text)
* linkId = "{linkId}"
* type = #{type}
* text = "{text}"

RuleSet: Required
* required = true

RuleSet: Repeats
* repeats = true

RuleSet: Answers(valueset)
* answerValueSet = Canonical({valueset})

RuleSet: Control(code)
* extension[$itemControl].valueCodeableConcept = $ITEMCTRL#{code}

RuleSet: Unit(code, display)
* extension[$unit].valueCoding = $UCUM#{code} "{display}"

RuleSet: DecimalRange(min, max)
* extension[$minValue].valueDecimal = {min}
* extension[$maxValue].valueDecimal = {max}

RuleSet: DecimalMin(min)
* extension[$minValue].valueDecimal = {min}

RuleSet: Code(system, code, display)
* code[+] = {system}#{code} "{display}"

RuleSet: EnabledForFollowUp
* enableWhen[+].question = "assessment-type"
* enableWhen[=].operator = #=
* enableWhen[=].answerCoding = $cs-assessment-type#follow-up

RuleSet: EnabledForPet(code)
* enableWhen[+].question = "imaging-procedure"
* enableWhen[=].operator = #=
* enableWhen[=].answerCoding = $cs-imaging-procedure#{code}

// Items shared by the three lesion groups: {prefix} is "" in target-lesion and "<group>." in the
// others (que-2).
RuleSet: LesionIdentity(prefix)
* item[+]
  * insert Question({prefix}lesion-id, string, Lesion ID)
  * insert Required
  * insert Code($DCM, 112039, Tracking Identifier)
* item[+]
  * insert Question({prefix}lesion-location, choice, Location)
  * insert Required
  * insert Answers(LesionLocationVS)
  * insert Code($SCT, 363698007, Finding site)
  * insert Control(drop-down)
* item[+]
  * insert Question({prefix}lesion-nodal, boolean, Lymph node (size is the short axis\))
  * insert Required

RuleSet: LesionSize(prefix)
* item[+]
  * insert Question({prefix}lesion-size, decimal, Size (longest diameter; short axis for a lymph node; 0 if disappeared\))
  * insert Unit(mm, mm)
  * insert DecimalRange(0, 1000)

Instance: gep-net-imaging-crf
InstanceOf: Questionnaire
Usage: #definition
Title: "GEP-NET imaging case-report form"
Description: "Standardized imaging case-report form for the response of gastroenteropancreatic neuroendocrine tumours to systemic therapy (RECIST 1.1, iRECIST, Choi, PERCIST 1.0), with the risk-stratification items of the review it comes from (Table 1, Table 2, sections I and V). One QuestionnaireResponse per exam; a pre-baseline exam (a scan before treatment start, used only for the tumour growth rate) is filled like a baseline one. QuestionnaireResponse.subject (the Patient) is required, and identity lives in the Patient resource, not in the answers."
* url = "https://fhirnet.dev/fhir/Questionnaire/gep-net-imaging-crf"
* version = "0.1.0"
* name = "GepNetImagingCrf"
* title = "GEP-NET imaging case-report form"
* status = #active
* experimental = false
* subjectType = #Patient
* publisher = "fhirnet"
* purpose = "Collect the measurements a reader needs for a response assessment and a risk stratification of a GEP-NET patient, so that fhirnet computes the response categories, the WHO grade, the recommended imaging and a PRRT eligibility screen."

// ---- exam ---------------------------------------------------------------------------------------
* item[+]
  * insert Question(imaging-date, date, Imaging date)
  * insert Required
* item[+]
  * insert Question(assessment-type, choice, Assessment type)
  * insert Required
  * insert Answers(AssessmentTypeVS)
  * insert Code($DCM, 126072, Time Point Type)
  * insert Control(radio-button)
* item[+]
  * insert Question(imaging-procedure, choice, Imaging procedure)
  * insert Required
  * insert Repeats
  * insert Answers(ImagingProcedureVS)
  * insert Control(check-box)
* item[+]
  * insert Question(baseline-date, date, Date of baseline)
  * insert Required
  * insert EnabledForFollowUp
* item[+]
  * insert Question(nadir-date, date, Date of nadir)
  * insert EnabledForFollowUp
* item[+]
  * insert Question(previous-treatment, choice, Previous treatment)
  * insert Repeats
  * insert Answers(PreviousTreatmentVS)
  * insert Control(check-box)
* item[+]
  * insert Question(therapy-type, choice, Type of drug)
  * insert Answers(TherapyTypeVS)
  * insert Control(radio-button)
* item[+]
  * insert Question(response-criteria, choice, Response criteria)
  * insert Required
  * insert Answers(ResponseCriteriaVS)
  * insert Code($DCM, 112021, Response Evaluation Method)
  * insert Control(radio-button)

// ---- lesions ------------------------------------------------------------------------------------
* item[+]
  * insert Question(target-lesion, group, Target lesions)
  * insert Repeats
  * extension[$maxOccurs].valueInteger = 5
  * insert Code($NCIT, C94520, Target Lesion Identification)
  * insert LesionIdentity()
  * insert LesionSize()
  * item[+]
    * insert Question(lesion-too-small, boolean, Too small to measure (faintly seen\))
  * item[+]
    * insert Question(lesion-density, decimal, Density (mean attenuation on CT\))
    * insert Unit("[hnsf'U]", HU)
    * insert DecimalRange(-1024, 3071)
    * insert Code($DCM, 112181, Mean Attenuation Coefficient)
  * item[+]
    * insert Question(lesion-suv-max, decimal, SUVmax)
    * insert Unit(g/ml{SUVbw}, g/mL (SUV body weight\))
    * insert DecimalMin(0)
    * insert Code($NCIT, C95012, Standardized Uptake Value Maximum)
  * item[+]
    * insert Question(lesion-sul-peak, decimal, SULpeak (PERCIST\))
    * insert Unit(g/ml{SUVlbm}, g/mL (SUV lean body mass\))
    * insert DecimalMin(0)
    * insert Code($NCIT, C181547, Peak Standardized Uptake Value Corrected for Lean Body Mass)
* item[+]
  * insert Question(non-target-lesion, group, Non-target lesions)
  * insert Repeats
  * insert Code($NCIT, C94521, Non-Target Lesion Identification)
  * insert LesionIdentity(non-target-lesion.)
  * item[+]
    * insert Question(lesion-status, choice, Status)
    * insert Required
    * insert Answers(NonTargetStatusVS)
    * insert Code($NCIT, C96643, Tumor Status)
    * insert Control(radio-button)
* item[+]
  * insert Question(new-lesion, group, New lesions)
  * insert Repeats
  * insert Code($NCIT, C94522, New Lesion Identification)
  * insert EnabledForFollowUp
  * insert LesionIdentity(new-lesion.)
  * insert LesionSize(new-lesion.)
  * item[+]
    * insert Question(lesion-modality, choice, Modality that shows the lesion)
    * insert Required
    * insert Answers(ImagingProcedureVS)
    * insert Control(drop-down)
  * item[+]
    * insert Question(lesion-equivocal, boolean, Equivocal)

// ---- PET reference region (PERCIST) -------------------------------------------------------------
* item[+]
  * insert Question(pet-reference, group, PET reference region)
  * insert EnabledForPet(SSTR-PET)
  * insert EnabledForPet(FDG-PET)
  * insert EnabledForPet(DOPA-PET)
  * enableBehavior = #any
  * item[+]
    * insert Question(liver-sul-mean, decimal, Liver SULmean)
    * insert Unit(g/ml{SUVlbm}, g/mL (SUV lean body mass\))
    * insert DecimalMin(0)
    * insert Code($NCIT, C181546, Mean Standardized Uptake Value Corrected for Lean Body Mass)
  * item[+]
    * insert Question(liver-sul-sd, decimal, Liver SUL standard deviation)
    * insert Unit(g/ml{SUVlbm}, g/mL (SUV lean body mass\))
    * insert DecimalMin(0)
  * item[+]
    * insert Question(blood-pool-sul-mean, decimal, Blood-pool SULmean)
    * insert Unit(g/ml{SUVlbm}, g/mL (SUV lean body mass\))
    * insert DecimalMin(0)
    * insert Code($NCIT, C181546, Mean Standardized Uptake Value Corrected for Lean Body Mass)
  * item[+]
    * insert Question(blood-pool-sul-sd, decimal, Blood-pool SUL standard deviation)
    * insert Unit(g/ml{SUVlbm}, g/mL (SUV lean body mass\))
    * insert DecimalMin(0)
  * item[+]
    * insert Question(uptake-time, integer, Uptake time (injection to scan\))
    * insert Unit(min, min)
    * extension[$minValue].valueInteger = 0

// ---- Choi -----------------------------------------------------------------------------------------
* item[+]
  * insert Question(intratumoral-nodules, choice, Intratumoral nodules (Choi\))
  * insert Answers(IntratumoralNodulesVS)
  * insert Control(radio-button)
  * enableWhen[+].question = "response-criteria"
  * enableWhen[=].operator = #=
  * enableWhen[=].answerCoding = $NCIT#C122394
  * insert EnabledForFollowUp
  * enableBehavior = #all

// ---- the reader's conclusion --------------------------------------------------------------------
* item[+]
  * insert Question(response-vs-baseline, choice, Response compared to baseline)
  * insert Answers(ResponseCategoryVS)
  * insert EnabledForFollowUp
  * insert Control(drop-down)
* item[+]
  * insert Question(response-vs-nadir, choice, Response compared to nadir)
  * insert Answers(ResponseCategoryVS)
  * insert EnabledForFollowUp
  * insert Control(drop-down)

// ---- risk stratification --------------------------------------------------------------------------
* item[+]
  * insert Question(risk, group, Risk stratification)
  * item[+]
    * insert Question(primary-site, choice, Primary site)
    * insert Answers(PrimarySiteVS)
    * insert Control(drop-down)
  * item[+]
    * insert Question(functional-status, choice, Functional status)
    * insert Answers(FunctionalStatusVS)
    * insert Control(radio-button)
  * item[+]
    * insert Question(syndrome, choice, Syndrome)
    * insert Repeats
    * insert Answers(FunctioningSyndromeVS)
    * insert Control(check-box)
    * enableWhen[+].question = "functional-status"
    * enableWhen[=].operator = #=
    * enableWhen[=].answerCoding = $cs-functional-status#functioning
  * item[+]
    * insert Question(men1, choice, MEN1 syndrome)
    * insert Answers(Men1StatusVS)
    * insert Control(radio-button)
  * item[+]
    * insert Question(differentiation, choice, Differentiation)
    * insert Answers(DifferentiationVS)
    * insert Control(radio-button)
  * item[+]
    * insert Question(ki67, decimal, Ki-67 index)
    * insert Unit(%, %)
    * insert DecimalRange(0, 100)
    * insert Code($NCIT, C123557, Ki67 Measurement)
  * item[+]
    * insert Question(mitotic-count, decimal, Mitotic count (per 2 mm²\))
    * insert Unit("/(2.mm2\)", per 2 mm²)
    * insert DecimalMin(0)
  * item[+]
    * insert Question(krenning-score, integer, Krenning score (0-4\))
    * extension[$minValue].valueInteger = 0
    * extension[$maxValue].valueInteger = 4
  * item[+]
    * insert Question(fdg-avid, boolean, FDG-avid disease)
