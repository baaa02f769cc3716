// ValueSets. Every ValueSet the Questionnaire uses is expandable without a terminology server:
// it either includes a whole project CodeSystem or enumerates its concepts (no filters), so the
// service can build contained, pre-expanded copies for renderers such as LHC-Forms.

RuleSet: ProjectValueSet
* ^experimental = false
* ^immutable = false

// ---- whole project code systems -----------------------------------------------------------

ValueSet: AssessmentTypeVS
Id: assessment-type
Title: "Assessment type"
Description: "Baseline, follow-up or pre-baseline."
* insert ProjectValueSet
* include codes from system AssessmentTypeCS

ValueSet: ImagingProcedureVS
Id: imaging-procedure
Title: "Imaging procedure"
Description: "Imaging procedures of the case-report form; also the modality of a new lesion."
* insert ProjectValueSet
* include codes from system ImagingProcedureCS

ValueSet: PreviousTreatmentVS
Id: previous-treatment
Title: "Previous treatment"
Description: "Previous treatments of the case-report form."
* insert ProjectValueSet
* include codes from system PreviousTreatmentCS

ValueSet: TherapyTypeVS
Id: therapy-type
Title: "Therapy type"
Description: "Type of drug whose response is assessed."
* insert ProjectValueSet
* include codes from system TherapyTypeCS

ValueSet: NonTargetStatusVS
Id: non-target-status
Title: "Non-target lesion status"
Description: "Status of a non-target lesion."
* insert ProjectValueSet
* include codes from system NonTargetStatusCS

ValueSet: IntratumoralNodulesVS
Id: intratumoral-nodules
Title: "Intratumoral nodules (Choi)"
Description: "None, new or enlarging intratumoral nodules."
* insert ProjectValueSet
* include codes from system IntratumoralNodulesCS

ValueSet: PrimarySiteVS
Id: primary-site
Title: "GEP-NET primary site"
Description: "Primary tumour sites of the case-report form."
* insert ProjectValueSet
* include codes from system PrimarySiteCS

ValueSet: EmbryologicOriginVS
Id: embryologic-origin
Title: "Embryologic origin"
Description: "Foregut, midgut or hindgut."
* insert ProjectValueSet
* include codes from system EmbryologicOriginCS

ValueSet: FunctionalStatusVS
Id: functional-status
Title: "Tumour functional status"
Description: "Functioning or non-functioning."
* insert ProjectValueSet
* include codes from system FunctionalStatusCS

ValueSet: FunctioningSyndromeVS
Id: functioning-syndrome
Title: "Functioning NET syndrome"
Description: "Hormonal syndromes of functioning GEP-NETs."
* insert ProjectValueSet
* include codes from system FunctioningSyndromeCS

ValueSet: DifferentiationVS
Id: differentiation
Title: "Tumour differentiation"
Description: "Well or poorly differentiated."
* insert ProjectValueSet
* include codes from system DifferentiationCS

ValueSet: WhoNetGradeVS
Id: who-net-grade
Title: "WHO grade of GEP neuroendocrine neoplasms"
Description: "G1 NET, G2 NET, G3 NET, G3 NEC."
* insert ProjectValueSet
* include codes from system WhoNetGradeCS

ValueSet: KrenningScoreVS
Id: krenning-score
Title: "Krenning score"
Description: "Krenning grades 0-4."
* insert ProjectValueSet
* include codes from system KrenningScoreCS

ValueSet: PrrtEligibilityVS
Id: prrt-eligibility
Title: "PRRT eligibility"
Description: "Eligible, not eligible or undetermined."
* insert ProjectValueSet
* include codes from system PrrtEligibilityCS

// ---- enumerated concepts of external code systems -----------------------------------------

ValueSet: Men1StatusVS
Id: men1-status
Title: "MEN1 status"
Description: "Whether the patient has multiple endocrine neoplasia type 1: yes, no or unknown. No SNOMED CT or ICD code for the MEN1 syndrome was found in the sources searched, so the answer is coded with HL7 v2 table 0136 and the FHIR data-absent-reason code system (both in the R4 core package)."
* insert ProjectValueSet
* $V2-0136#Y "Yes"
* $V2-0136#N "No"
* $DAR#unknown "Unknown"

ValueSet: ResponseCriteriaVS
Id: response-criteria
Title: "Response criteria"
Description: "The four response criteria fhirnet implements, coded with CDISC codelist C124298 'Category of Oncology Response Assessment' (NCIt codes, CDISC CT 2025-03-28). The designation holds the CDISC submission value."
* insert ProjectValueSet
* $NCIT#C124415 "Response Evaluation Criteria in Solid Tumors Version 1.1"
* $NCIT#C124415 ^designation[0].value = "RECIST 1.1"
* $NCIT#C136711 "Immune-Modified Response Evaluation Criteria in Solid Tumors"
* $NCIT#C136711 ^designation[0].value = "iRECIST"
* $NCIT#C122394 "Choi Response Criteria in the Evaluation of Gastrointestinal Stromal Tumors"
* $NCIT#C122394 ^designation[0].value = "CHOI GIST 2008"
* $NCIT#C126039 "PET Response Criteria in Solid Tumors"
* $NCIT#C126039 ^designation[0].value = "PERCIST"

// Response categories: CDISC codelist C96785 'Oncology Response Assessment Result' (NCIt codes),
// display = NCI preferred term. ResponseCategoryVS also carries each CDISC submission value as a
// designation: it is the code fhirnet's assessment API uses (CR, PR, ..., iUPD, CMR, ...).
// (SUSHI 3.21 cannot apply a concept caret rule that comes from an inserted RuleSet, so the
// designations are written out in ResponseCategoryVS itself.)

RuleSet: CR
* $NCIT#C4870 "Complete Remission"
RuleSet: PR
* $NCIT#C18058 "Partial Remission"
RuleSet: SD
* $NCIT#C18213 "Stable Disease"
RuleSet: PD
* $NCIT#C35571 "Progressive Disease"
RuleSet: NE
* $NCIT#C62222 "Unevaluable"
RuleSet: NonCRNonPD
* $NCIT#C96700 "Non Complete Response/Non Progressive Disease"
RuleSet: iCR
* $NCIT#C142357 "iRECIST Complete Response"
RuleSet: iPR
* $NCIT#C142358 "iRECIST Partial Response"
RuleSet: iSD
* $NCIT#C142359 "iRECIST Stable Disease"
RuleSet: iUPD
* $NCIT#C142360 "iRECIST Unconfirmed Progressive Disease"
RuleSet: iCPD
* $NCIT#C142356 "iRECIST Confirmed Progressive Disease"
RuleSet: NoniCRNoniUPD
* $NCIT#C142361 "Non iRECIST Complete Response-Non iRECIST Unconfirmed Progressive Disease"
RuleSet: CMR
* $NCIT#C123407 "Tumor Complete Metabolic Response"
RuleSet: PMR
* $NCIT#C123609 "Partial Metabolic Response"
RuleSet: SMD
* $NCIT#C123616 "Stable Metabolic Disease"
RuleSet: PMD
* $NCIT#C123608 "Progressive Metabolic Disease"

ValueSet: ResponseCategoryVS
Id: response-category
Title: "Response category (all criteria)"
Description: "Every timepoint response category of RECIST 1.1, iRECIST, Choi and PERCIST 1.0 (overall, target and non-target). Which codes a given criteria may use is in the per-criteria value sets and the invariants of the response-assessment profile."
* insert ProjectValueSet
* insert CR
* insert PR
* insert SD
* insert PD
* insert NE
* insert NonCRNonPD
* insert iCR
* insert iPR
* insert iSD
* insert iUPD
* insert iCPD
* insert NoniCRNoniUPD
* insert CMR
* insert PMR
* insert SMD
* insert PMD
* $NCIT#C4870 ^designation[0].value = "CR"
* $NCIT#C18058 ^designation[0].value = "PR"
* $NCIT#C18213 ^designation[0].value = "SD"
* $NCIT#C35571 ^designation[0].value = "PD"
* $NCIT#C62222 ^designation[0].value = "NE"
* $NCIT#C96700 ^designation[0].value = "NON-CR/NON-PD"
* $NCIT#C142357 ^designation[0].value = "iCR"
* $NCIT#C142358 ^designation[0].value = "iPR"
* $NCIT#C142359 ^designation[0].value = "iSD"
* $NCIT#C142360 ^designation[0].value = "iUPD"
* $NCIT#C142356 ^designation[0].value = "iCPD"
* $NCIT#C142361 ^designation[0].value = "NON-iCR/NON-iUPD"
* $NCIT#C123407 ^designation[0].value = "CMR"
* $NCIT#C123609 ^designation[0].value = "PMR"
* $NCIT#C123616 ^designation[0].value = "SMD"
* $NCIT#C123608 ^designation[0].value = "PMD"

ValueSet: RecistOverallResponseVS
Id: recist-overall-response
Title: "RECIST 1.1 overall response"
Description: "Overall timepoint response of RECIST 1.1 (NON-CR/NON-PD only with non-target lesions alone)."
* insert ProjectValueSet
* insert CR
* insert PR
* insert SD
* insert PD
* insert NE
* insert NonCRNonPD

ValueSet: IrecistOverallResponseVS
Id: irecist-overall-response
Title: "iRECIST overall response"
Description: "Overall timepoint response of iRECIST."
* insert ProjectValueSet
* insert iCR
* insert iPR
* insert iSD
* insert iUPD
* insert iCPD
* insert NE
* insert NoniCRNoniUPD

ValueSet: ChoiOverallResponseVS
Id: choi-overall-response
Title: "Choi overall response"
Description: "Overall timepoint response of the Choi criteria."
* insert ProjectValueSet
* insert CR
* insert PR
* insert SD
* insert PD
* insert NE

ValueSet: PercistOverallResponseVS
Id: percist-overall-response
Title: "PERCIST 1.0 overall response"
Description: "Overall timepoint response of PERCIST 1.0."
* insert ProjectValueSet
* insert CMR
* insert PMR
* insert SMD
* insert PMD
* insert NE

ValueSet: TargetResponseVS
Id: target-response
Title: "Target-lesion response (all criteria)"
Description: "Target-lesion response categories of RECIST 1.1 and Choi (CR, PR, SD, PD, NE), iRECIST (iCR, iPR, iSD, iUPD, NE) and PERCIST 1.0 (CMR, PMR, SMD, PMD, NE)."
* insert ProjectValueSet
* insert CR
* insert PR
* insert SD
* insert PD
* insert NE
* insert iCR
* insert iPR
* insert iSD
* insert iUPD
* insert CMR
* insert PMR
* insert SMD
* insert PMD

ValueSet: NonTargetResponseVS
Id: non-target-response
Title: "Non-target-lesion response (all criteria)"
Description: "Non-target-lesion response categories: CR, NON-CR/NON-PD, PD, NE (RECIST 1.1, Choi, PERCIST 1.0) and iCR, NON-iCR/NON-iUPD, iUPD, NE (iRECIST)."
* insert ProjectValueSet
* insert CR
* insert NonCRNonPD
* insert PD
* insert NE
* insert iCR
* insert NoniCRNoniUPD
* insert iUPD

ValueSet: DiseaseStatusTrendVS
Id: disease-status-trend
Title: "Cancer disease status trend"
Description: "The four active codes of mCODE STU4 ConditionStatusTrendVS (http://hl7.org/fhir/us/mcode/ValueSet/mcode-condition-status-trend-vs): improved, stable, worsened, undetermined. Enumerated here because the mCODE package is not available to the offline build; displays as in mCODE."
* insert ProjectValueSet
* $SCT#268910001 "Patient's condition improved (finding)"
* $SCT#359746009 "Patient's condition stable (finding)"
* $SCT#271299001 "Patient's condition worsened (finding)"
* $SCT#709137006 "Patient condition undetermined (finding)"

ValueSet: LesionLocationVS
Id: lesion-location
Title: "Lesion location"
Description: "Organ or site of a target, non-target or new lesion: SNOMED CT body structures, each read in a DICOM PS3.16 context group (DICOM displays). Mesenteric and retroperitoneal nodes are listed for the typical nodal sites of GEP-NETs; every nodal lesion counts as the organ 'lymph nodes' for the two-per-organ rule whatever its site."
* insert ProjectValueSet
* $SCT#10200004 "Liver"
* $SCT#15776009 "Pancreas"
* $SCT#69695003 "Stomach"
* $SCT#38848004 "Duodenum"
* $SCT#21306003 "Jejunum"
* $SCT#34516001 "Ileum"
* $SCT#30315005 "Small intestine"
* $SCT#66754008 "Appendix"
* $SCT#71854001 "Colon"
* $SCT#34402009 "Rectum"
* $SCT#59441001 "Lymph node"
* $SCT#279795009 "Lymph node of mesentery"
* $SCT#91394001 "Retroperitoneal lymph node"
* $SCT#15425007 "Peritoneum"
* $SCT#27398004 "Omentum"
* $SCT#82849001 "Retroperitoneum"
* $SCT#39607008 "Lung"
* $SCT#3120008 "Pleura"
* $SCT#272673000 "Bone"
* $SCT#15497006 "Ovary"
* $SCT#23451007 "Adrenal gland"
* $SCT#78961009 "Spleen"
* $SCT#64033007 "Kidney"
* $SCT#80891009 "Heart"
* $SCT#12738006 "Brain"
* $SCT#76752008 "Breast"
* $SCT#39937001 "Skin"
* $SCT#87784001 "Soft tissue"
