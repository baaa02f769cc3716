// ConceptMaps. Equivalence is read from target to source (R4): "wider" = the target means more.

RuleSet: ConceptMapMetadata(id, name, title)
* url = "https://fhirnet.dev/fhir/ConceptMap/{id}"
* version = "0.1.0"
* name = "{name}"
* title = "{title}"
* status = #active
* experimental = false
* publisher = "fhirnet"

// One source concept mapped to one target concept.
RuleSet: Map(code, display, target, targetDisplay, equivalence)
* element[+].code = #{code}
* element[=].display = "{display}"
* element[=].target[+].code = #{target}
* element[=].target[=].display = "{targetDisplay}"
* element[=].target[=].equivalence = #{equivalence}

RuleSet: Unmatched(code, display, comment)
* element[+].code = #{code}
* element[=].display = "{display}"
* element[=].target[+].equivalence = #unmatched
* element[=].target[=].comment = "{comment}"

// ---- response category -> mCODE disease status ----------------------------------------------

RuleSet: ToImproved(code, display)
* insert Map({code}, {display}, 268910001, Patient's condition improved (finding\), wider)
RuleSet: ToStable(code, display)
* insert Map({code}, {display}, 359746009, Patient's condition stable (finding\), wider)
RuleSet: ToWorsened(code, display)
* insert Map({code}, {display}, 271299001, Patient's condition worsened (finding\), wider)
RuleSet: ToUndetermined(code, display)
* insert Map({code}, {display}, 709137006, Patient condition undetermined (finding\), wider)

Instance: response-category-to-disease-status
InstanceOf: ConceptMap
Usage: #definition
Title: "Response category to mCODE disease status"
Description: "Maps every timepoint response category of RECIST 1.1, iRECIST, Choi and PERCIST 1.0 (CDISC/NCIt) to the cancer disease status trend of mCODE STU4 (ConditionStatusTrendVS: improved, stable, worsened, undetermined). fhirnet uses it to derive the cancer-disease-status Observation from a response-assessment Observation. Responses map to improved, stable categories (including NON-CR/NON-PD) to stable, confirmed progression to worsened, and not evaluable to undetermined. iRECIST iUPD (unconfirmed progression, possibly pseudo-progression) maps to undetermined until iCPD confirms it or a later assessment resets it."
* insert ConceptMapMetadata(response-category-to-disease-status, ResponseCategoryToDiseaseStatus, Response category to mCODE disease status)
* sourceCanonical = Canonical(ResponseCategoryVS)
* targetCanonical = Canonical(DiseaseStatusTrendVS)
* group[+].source = $NCIT
* group[=].target = $SCT
* group[=]
  * insert ToImproved(C4870, Complete Remission)
  * insert ToImproved(C18058, Partial Remission)
  * insert ToStable(C18213, Stable Disease)
  * insert ToWorsened(C35571, Progressive Disease)
  * insert ToUndetermined(C62222, Unevaluable)
  * insert ToStable(C96700, Non Complete Response/Non Progressive Disease)
  * insert ToImproved(C142357, iRECIST Complete Response)
  * insert ToImproved(C142358, iRECIST Partial Response)
  * insert ToStable(C142359, iRECIST Stable Disease)
  * insert Map(C142360, iRECIST Unconfirmed Progressive Disease, 709137006, Patient condition undetermined (finding\), inexact)
  * element[=].target[=].comment = "Unconfirmed progression: the trend is settled by the next assessment (iCPD: worsened; reset to iSD/iPR/iCR: stable or improved)."
  * insert ToWorsened(C142356, iRECIST Confirmed Progressive Disease)
  * insert ToStable(C142361, Non iRECIST Complete Response-Non iRECIST Unconfirmed Progressive Disease)
  * insert ToImproved(C123407, Tumor Complete Metabolic Response)
  * insert ToImproved(C123609, Partial Metabolic Response)
  * insert ToStable(C123616, Stable Metabolic Disease)
  * insert ToWorsened(C123608, Progressive Metabolic Disease)

// ---- the form's default criteria --------------------------------------------------------------

Instance: therapy-type-to-response-criteria
InstanceOf: ConceptMap
Usage: #definition
Title: "Therapy type to default response criteria"
Description: "The response criteria the form proposes for a therapy type (seed Table 2): cytotoxic -> RECIST 1.1, cytostatic -> Choi, immunotherapy -> iRECIST. A proposal, not a meaning equivalence (equivalence relatedto); the reader may choose other criteria, e.g. PERCIST 1.0."
* insert ConceptMapMetadata(therapy-type-to-response-criteria, TherapyTypeToResponseCriteria, Therapy type to default response criteria)
* sourceCanonical = Canonical(TherapyTypeVS)
* targetCanonical = Canonical(ResponseCriteriaVS)
* group[+].source = $cs-therapy-type
* group[=].target = $NCIT
* group[=]
  * insert Map(cytotoxic, Cytotoxic, C124415, Response Evaluation Criteria in Solid Tumors Version 1.1, relatedto)
  * insert Map(cytostatic, Cytostatic, C122394, Choi Response Criteria in the Evaluation of Gastrointestinal Stromal Tumors, relatedto)
  * insert Map(immunotherapy, Immunotherapy, C136711, Immune-Modified Response Evaluation Criteria in Solid Tumors, relatedto)

// ---- primary site -----------------------------------------------------------------------------

Instance: primary-site-to-embryologic-origin
InstanceOf: ConceptMap
Usage: #definition
Title: "Primary site to embryologic origin"
Description: "Derivation of the embryologic origin from the primary site (section I of the review): stomach, duodenum, pancreas -> foregut; jejunum/ileum, appendix, right colon -> midgut; left colon, rectum -> hindgut. An unspecified colon segment and an unknown primary have no origin."
* insert ConceptMapMetadata(primary-site-to-embryologic-origin, PrimarySiteToEmbryologicOrigin, Primary site to embryologic origin)
* sourceCanonical = Canonical(PrimarySiteVS)
* targetCanonical = Canonical(EmbryologicOriginVS)
* group[+].source = $cs-primary-site
* group[=].target = $cs-embryologic-origin
* group[=]
  * insert Map(stomach, Stomach, foregut, Foregut, wider)
  * insert Map(duodenum, Duodenum, foregut, Foregut, wider)
  * insert Map(pancreas, Pancreas, foregut, Foregut, wider)
  * insert Map(jejunum-ileum, Jejunum / ileum, midgut, Midgut, wider)
  * insert Map(appendix, Appendix, midgut, Midgut, wider)
  * insert Map(colon-right, Right colon, midgut, Midgut, wider)
  * insert Map(colon-left, Left colon, hindgut, Hindgut, wider)
  * insert Map(rectum, Rectum, hindgut, Hindgut, wider)
  * insert Unmatched(colon, Colon, The right colon is midgut and the left colon hindgut: the segment is needed.)
  * insert Unmatched(unknown, Unknown primary, No primary site.)

Instance: primary-site-to-snomed
InstanceOf: ConceptMap
Usage: #definition
Title: "Primary site to SNOMED CT body structure"
Description: "SNOMED CT body structures (as read in DICOM PS3.16 context groups) for the primary sites, e.g. for Condition.bodySite of an mCODE PrimaryCancerCondition."
* insert ConceptMapMetadata(primary-site-to-snomed, PrimarySiteToSnomed, Primary site to SNOMED CT body structure)
* sourceCanonical = Canonical(PrimarySiteVS)
* group[+].source = $cs-primary-site
* group[=].target = $SCT
* group[=]
  * insert Map(stomach, Stomach, 69695003, Stomach, equivalent)
  * insert Map(duodenum, Duodenum, 38848004, Duodenum, equivalent)
  * insert Map(pancreas, Pancreas, 15776009, Pancreas, equivalent)
  * insert Map(jejunum-ileum, Jejunum / ileum, 30315005, Small intestine, wider)
  * insert Map(appendix, Appendix, 66754008, Appendix, equivalent)
  * insert Map(colon, Colon, 71854001, Colon, equivalent)
  * insert Map(colon-right, Right colon, 71854001, Colon, wider)
  * insert Map(colon-left, Left colon, 71854001, Colon, wider)
  * insert Map(rectum, Rectum, 34402009, Rectum, equivalent)
  * insert Unmatched(unknown, Unknown primary, No body structure.)

// ---- procedures and treatments ----------------------------------------------------------------

Instance: imaging-procedure-to-snomed
InstanceOf: ConceptMap
Usage: #definition
Title: "Imaging procedure to standard procedure codes"
Description: "SNOMED CT procedures for the form's imaging procedures, for Observation.method: CT, MRI and PET are the codes of mCODE STU4 TumorSizeMethodVS; SSTR scintigraphy/SPECT maps to SNOMED CT 45316007 'Radionuclide localization of tumor' of DICOM PS3.16 CID 3108 (NM/PET Procedure). No standard code names the tracer (SSTR, FDG, DOPA) of a PET or scintigraphy procedure, hence the wider targets."
* insert ConceptMapMetadata(imaging-procedure-to-snomed, ImagingProcedureToSnomed, Imaging procedure to standard procedure codes)
* sourceCanonical = Canonical(ImagingProcedureVS)
* group[+].source = $cs-imaging-procedure
* group[=].target = $SCT
* group[=]
  * insert Map(CT, Contrast-enhanced CT, 77477000, Computerized axial tomography (procedure\), wider)
  * insert Map(MRI, Contrast-enhanced MRI, 113091000, Magnetic resonance imaging (procedure\), wider)
  * insert Map(SSTR-PET, SSTR PET, 82918005, Positron emission tomography (procedure\), wider)
  * insert Map(FDG-PET, FDG PET, 82918005, Positron emission tomography (procedure\), wider)
  * insert Map(DOPA-PET, DOPA PET, 82918005, Positron emission tomography (procedure\), wider)
  * insert Map(SSTR-SPECT, SSTR scintigraphy / SPECT, 45316007, Radionuclide localization of tumor, wider)
  * element[=].target[=].comment = "No SNOMED CT or DICOM code for somatostatin-receptor scintigraphy was found (DICOM CIDs 3108, 3757, 646). 45316007 (DICOM CID 3108 NM/PET Procedure) covers the planar scintigraphy and the SPECT(/CT) the form's option includes, without the tracer; SNOMED CT 105371005 'SPECT' (CID 3757) would be narrower than a planar study. DCM 127902 'SPECT CT of whole body' is a preclinical small-animal procedure (CID 646) and is not used."

Instance: previous-treatment-to-snomed
InstanceOf: ConceptMap
Usage: #definition
Title: "Previous treatment to SNOMED CT"
Description: "SNOMED CT procedures for the form's previous treatments where one was found (mCODE STU4 and DICOM PS3.16); thermal ablation, SIRT, targeted agents, immunotherapy and somatostatin analogues have none in the sources checked (drugs belong in ATC or RxNorm codings of a MedicationStatement)."
* insert ConceptMapMetadata(previous-treatment-to-snomed, PreviousTreatmentToSnomed, Previous treatment to SNOMED CT)
* sourceCanonical = Canonical(PreviousTreatmentVS)
* group[+].source = $cs-previous-treatment
* group[=].target = $SCT
* group[=]
  * insert Map(surgery, Surgery, 387713003, Surgical procedure, equivalent)
  * insert Map(liver-embolization, Liver embolization (TAE/TACE\), 16736007, Transcatheter therapy for embolization, wider)
  * insert Map(prrt, PRRT, 440252007, Administration of radiopharmaceutical (procedure\), wider)
  * insert Map(chemotherapy, Chemotherapeutic regimen, 367336001, Chemotherapy, equivalent)
  * insert Unmatched(thermal-ablation, Thermal ablation, No SNOMED CT code found in the sources checked.)
  * insert Unmatched(sirt, SIRT, No SNOMED CT code found in the sources checked.)
  * insert Unmatched(targeted-therapy, Targeted molecular agent, A drug class: code the drug (ATC/RxNorm\).)
  * insert Unmatched(immunotherapy, Immunotherapy, No SNOMED CT code found in the sources checked.)
  * insert Unmatched(somatostatin-analog, Somatostatin analogue, A drug class: code the drug (ATC/RxNorm\).)

// ---- grade and non-target status --------------------------------------------------------------

Instance: who-net-grade-to-histologic-grade
InstanceOf: ConceptMap
Usage: #definition
Title: "WHO NET grade to mCODE histologic grade"
Description: "The WHO 2019 grades of GEP neuroendocrine neoplasms to the SNOMED CT codes of mCODE STU4 HistologicGradeVS (mcode-histologic-grade-vs). WHO 2019 calls G1 low grade, G2 intermediate grade and G3 (NET and NEC) high grade; the G3 NET / G3 NEC distinction is lost."
* insert ConceptMapMetadata(who-net-grade-to-histologic-grade, WhoNetGradeToHistologicGrade, WHO NET grade to mCODE histologic grade)
* sourceCanonical = Canonical(WhoNetGradeVS)
* targetCanonical = "http://hl7.org/fhir/us/mcode/ValueSet/mcode-histologic-grade-vs"
* group[+].source = $cs-who-net-grade
* group[=].target = $SCT
* group[=]
  * insert Map(G1, G1 NET, 1155708003, Low histologic grade (qualifier value\), wider)
  * insert Map(G2, G2 NET, 1286893008, Intermediate histologic grade (qualifier value\), wider)
  * insert Map(G3-NET, G3 NET, 1155707008, High histologic grade (qualifier value\), wider)
  * insert Map(G3-NEC, G3 NEC, 1155707008, High histologic grade (qualifier value\), wider)

Instance: non-target-status-to-cdisc
InstanceOf: ConceptMap
Usage: #definition
Title: "Non-target status to CDISC tumor state"
Description: "The form's non-target lesion status to the results of the CDISC tumour-state test (TRTESTCD TUMSTATE; codelist C124309 'Tumor or Lesion Properties Test Result', NCIt codes), as the CDISC RECIST 1.1 supplement records non-target lesions. The status increased (criteria v2) has no TUMSTATE result of its own and maps to PRESENT (wider, with a comment)."
* insert ConceptMapMetadata(non-target-status-to-cdisc, NonTargetStatusToCdisc, Non-target status to CDISC tumor state)
* sourceCanonical = Canonical(NonTargetStatusVS)
* group[+].source = $cs-non-target-status
* group[=].target = $NCIT
* group[=]
  * insert Map(present, Present, C25626, Present, equivalent)
  * insert Map(absent, Absent, C48190, Absent, equivalent)
  * insert Map(progression, Unequivocal progression, C123645, Unequivocal, equivalent)
  * element[=].target[=].comment = "CDISC records unequivocal progression of a non-target lesion as TUMSTATE = UNEQUIVOCAL."
  * insert Map(not-evaluated, Not evaluated, C62222, Unevaluable, equivalent)
  * insert Map(increased, Increased, C25626, Present, wider)
  * element[=].target[=].comment = "CDISC TUMSTATE has no result for a further increase that is not unequivocal progression (the iRECIST FAQ's INCLA): UNEQUIVOCAL would overstate it, so the lesion is recorded PRESENT, which is wider and loses the increase. A sponsor-defined TRORRES text (e.g. INCREASED) can carry it."
