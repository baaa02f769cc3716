// Project CodeSystems: only for concepts that no standard terminology covers (see fsh/README.md).
// Every one is complete and case-sensitive; codes are stable API: never reuse or rename a code.

RuleSet: LocalCodeSystem
* ^caseSensitive = true
* ^content = #complete
* ^experimental = false
* ^hierarchyMeaning = #is-a

CodeSystem: AssessmentTypeCS
Id: assessment-type
Title: "Assessment type"
Description: "Whether the reported exam is the baseline of the response assessment, a follow-up, or (criteria v2) a pre-baseline scan used only for the tumour growth rate. DICOM CID 6146 (Time Point Type) has UMLS C1442488 'Baseline' but no code for a generic follow-up or a pre-treatment time point, so the form uses these codes."
* insert LocalCodeSystem
* #baseline "Baseline" "The reference exam before (or at the start of) the therapy whose response is assessed; target lesions are selected on it."
* #follow-up "Follow-up" "An exam after the baseline, compared with the baseline and the nadir."
* #pre-baseline "Pre-baseline" "A scan before treatment start, dated before the baseline, used only for the tumour growth rate (pre-treatment TGR, hyperprogression); it is never assessed as an exam."

CodeSystem: ImagingProcedureCS
Id: imaging-procedure
Title: "Imaging procedure"
Description: "Imaging procedures as the case-report form lists them (seed Table 1; SSTR imaging split into PET and SPECT). No standard code covers the tracer-specific procedures (SSTR PET, 18F-DOPA PET); codes equal the `modalities` values of fhirnet's assessment API. ConceptMap imaging-procedure-to-snomed gives SNOMED CT equivalents where they exist."
* insert LocalCodeSystem
* #CT "Contrast-enhanced CT" "Contrast-enhanced computed tomography (form: 'CE CT')."
* #MRI "Contrast-enhanced MRI" "Contrast-enhanced magnetic resonance imaging (form: 'CE MRI')."
* #SSTR-PET "SSTR PET" "Somatostatin-receptor PET, e.g. 68Ga-DOTATOC or 68Ga-DOTATATE PET/CT (form: 'SSTR imaging')."
* #SSTR-SPECT "SSTR scintigraphy / SPECT" "Somatostatin-receptor scintigraphy or SPECT(/CT), e.g. 111In-pentetreotide (Octreoscan) (form: 'SSTR imaging')."
* #FDG-PET "FDG PET" "18F-fluorodeoxyglucose PET(/CT or /MRI)."
* #DOPA-PET "DOPA PET" "18F-fluorodihydroxyphenylalanine (18F-DOPA) PET(/CT or /MRI)."

CodeSystem: PreviousTreatmentCS
Id: previous-treatment
Title: "Previous treatment"
Description: "Previous treatments as the case-report form lists them (seed Table 1, plus somatostatin analogues from the data dictionary). ConceptMap previous-treatment-to-snomed gives SNOMED CT codes where one exists."
* insert LocalCodeSystem
* #surgery "Surgery" "Surgical resection or cytoreduction."
* #thermal-ablation "Thermal ablation" "Percutaneous or intra-operative thermal ablation (radiofrequency, microwave)."
* #liver-embolization "Liver embolization (TAE/TACE)" "Transarterial embolization or chemoembolization of liver metastases."
* #sirt "SIRT" "Selective internal radiation therapy (90Y radioembolization)."
* #prrt "PRRT" "Peptide receptor radionuclide therapy (e.g. 177Lu-DOTATATE, 90Y-DOTATOC)."
* #chemotherapy "Chemotherapeutic regimen" "Cytotoxic chemotherapy (e.g. capecitabine-temozolomide, streptozotocin-based, platinum-etoposide)."
* #targeted-therapy "Targeted molecular agent" "Targeted molecular therapy (e.g. everolimus, sunitinib)."
* #immunotherapy "Immunotherapy" "Immune checkpoint modulators."
* #somatostatin-analog "Somatostatin analogue" "Octreotide or lanreotide."

CodeSystem: TherapyTypeCS
Id: therapy-type
Title: "Therapy type"
Description: "Type of drug whose response is assessed (seed Table 2 'Type of drug'); it proposes the response criteria (ConceptMap therapy-type-to-response-criteria)."
* insert LocalCodeSystem
* #cytotoxic "Cytotoxic" "Cytotoxic chemotherapy; response by tumour shrinkage (RECIST 1.1)."
* #cytostatic "Cytostatic" "Cytostatic (targeted molecular) therapy; response by size and density (Choi)."
* #immunotherapy "Immunotherapy" "Immune checkpoint modulators; response by iRECIST."

CodeSystem: NonTargetStatusCS
Id: non-target-status
Title: "Non-target lesion status"
Description: "Status of a non-target lesion at an exam (RECIST 1.1 section 4.3.3). Codes equal the `status` values of fhirnet's assessment API. ConceptMap non-target-status-to-cdisc gives the CDISC TUMSTATE results."
* insert LocalCodeSystem
* #present "Present" "The lesion is present (non-complete response, non-progression)."
* #absent "Absent" "The lesion has disappeared (nodes: normal size, < 10 mm short axis)."
* #progression "Unequivocal progression" "Unequivocal progression of the existing non-target lesion."
* #not-evaluated "Not evaluated" "The lesion was not assessed at this exam."
* #increased "Increased" "Further increase since the last assessment, not by itself unequivocal progression (the iRECIST FAQ's INCLA); after an iUPD driven by non-target lesions it confirms iCPD."

CodeSystem: IntratumoralNodulesCS
Id: intratumoral-nodules
Title: "Intratumoral nodules (Choi)"
Description: "Intratumoral nodules on CT, used by the Choi criteria (new or enlarging nodules are progression)."
* insert LocalCodeSystem
* #none "None" "No new intratumoral nodule and no increase in size of existing ones."
* #new "New intratumoral nodules" "New intratumoral nodules."
* #enlarging "Enlarging intratumoral nodules" "Increase in the size of existing intratumoral nodules."

CodeSystem: PrimarySiteCS
Id: primary-site
Title: "GEP-NET primary site"
Description: "Primary tumour site of a gastroenteropancreatic NET, as section I of the review groups them. `colon` may be refined to right or left colon, because the embryologic origin differs (ConceptMap primary-site-to-embryologic-origin). ConceptMap primary-site-to-snomed gives SNOMED CT body structures."
* insert LocalCodeSystem
* #stomach "Stomach" "Gastric NET."
* #duodenum "Duodenum" "Duodenal NET (including ampullary)."
* #pancreas "Pancreas" "Pancreatic NET."
* #jejunum-ileum "Jejunum / ileum" "Small-bowel NET of the jejunum or ileum."
* #appendix "Appendix" "Appendiceal NET."
* #colon "Colon" "Colonic NET, segment not specified."
  * #colon-right "Right colon" "Caecum, ascending colon or proximal two thirds of the transverse colon (midgut)."
  * #colon-left "Left colon" "Distal third of the transverse colon, descending or sigmoid colon (hindgut)."
* #rectum "Rectum" "Rectal NET."
* #unknown "Unknown primary" "Primary site not found (carcinoma of unknown primary)."

CodeSystem: EmbryologicOriginCS
Id: embryologic-origin
Title: "Embryologic origin"
Description: "Embryologic origin of a GEP-NET, derived from the primary site; it predicts which molecular imaging performs best (seed Table 2). ICD-10-CM C7A.094/C7A.095/C7A.096 are disorder codes (carcinoid tumour of foregut/midgut/hindgut), not values for this property, so the project defines these three."
* insert LocalCodeSystem
* #foregut "Foregut" "Stomach, duodenum, pancreas."
* #midgut "Midgut" "Jejunum, ileum, appendix, right colon."
* #hindgut "Hindgut" "Left colon, rectum."

CodeSystem: FunctionalStatusCS
Id: functional-status
Title: "Tumour functional status"
Description: "Whether the NET causes a hormonal syndrome."
* insert LocalCodeSystem
* #functioning "Functioning" "Associated with a clinical hormonal syndrome."
* #non-functioning "Non-functioning" "No hormonal syndrome."

CodeSystem: FunctioningSyndromeCS
Id: functioning-syndrome
Title: "Functioning NET syndrome"
Description: "Hormonal syndromes of functioning GEP-NETs named in section I of the review. ICD-O-3 has morphology codes for some tumours (e.g. 8151/3 insulinoma) but they describe the tumour, not the syndrome, and there is none for carcinoid syndrome, so the project defines the list."
* insert LocalCodeSystem
* #insulinoma "Insulinoma" "Hyperinsulinaemic hypoglycaemia."
* #gastrinoma "Gastrinoma" "Zollinger-Ellison syndrome."
* #vipoma "VIPoma" "Watery diarrhoea, hypokalaemia, achlorhydria (Verner-Morrison syndrome)."
* #glucagonoma "Glucagonoma" "Glucagonoma syndrome (necrolytic migratory erythema, diabetes)."
* #somatostatinoma "Somatostatinoma" "Somatostatinoma syndrome."
* #carcinoid-syndrome "Carcinoid syndrome" "Flushing, diarrhoea and related symptoms of serotonin secretion."

CodeSystem: DifferentiationCS
Id: differentiation
Title: "Tumour differentiation"
Description: "Histological differentiation of the neuroendocrine neoplasm (WHO 2019): well-differentiated NET versus poorly differentiated NEC."
* insert LocalCodeSystem
* #well-differentiated "Well differentiated" "Well-differentiated neuroendocrine tumour (NET)."
* #poorly-differentiated "Poorly differentiated" "Poorly differentiated neuroendocrine carcinoma (NEC)."

CodeSystem: WhoNetGradeCS
Id: who-net-grade
Title: "WHO grade of GEP neuroendocrine neoplasms"
Description: "WHO 2019 classification of gastroenteropancreatic neuroendocrine neoplasms. SNOMED CT has generic low/intermediate/high histologic grades (ConceptMap who-net-grade-to-histologic-grade) but no code that separates a G3 NET from a G3 NEC. The grade follows the higher of Ki-67 and mitotic count."
* insert LocalCodeSystem
* #G1 "G1 NET" "Well-differentiated NET, grade 1: Ki-67 < 3 % and mitotic count < 2 per 2 mm²."
* #G2 "G2 NET" "Well-differentiated NET, grade 2: Ki-67 3-20 % or mitotic count 2-20 per 2 mm²."
* #G3-NET "G3 NET" "Well-differentiated NET, grade 3: Ki-67 > 20 % or mitotic count > 20 per 2 mm²."
* #G3-NEC "G3 NEC" "Poorly differentiated neuroendocrine carcinoma (high grade by definition)."

CodeSystem: KrenningScoreCS
Id: krenning-score
Title: "Krenning score"
Description: "Visual grading of somatostatin-receptor uptake of the tumour relative to normal liver, spleen and kidneys (Krenning score, section V of the review). PRRT is considered when the score is greater than 2. The form records the score as an integer; this code system gives each grade its meaning."
* insert LocalCodeSystem
* #0 "0 - no uptake" "No tumour uptake."
* #1 "1 - very low uptake" "Very low tumour uptake."
* #2 "2 - uptake up to liver" "Tumour uptake less than or equal to normal liver."
* #3 "3 - uptake above liver" "Tumour uptake greater than normal liver."
* #4 "4 - uptake above spleen or kidneys" "Tumour uptake greater than normal spleen or kidneys."

CodeSystem: PrrtEligibilityCS
Id: prrt-eligibility
Title: "PRRT eligibility"
Description: "Result of fhirnet's PRRT eligibility screen (section V of the review: well-differentiated G1/G2 NET and Krenning score greater than 2)."
* insert LocalCodeSystem
* #eligible "Eligible for PRRT" "Well-differentiated G1 or G2 NET with a Krenning score greater than 2."
* #not-eligible "Not eligible for PRRT" "At least one criterion is not met (grade, differentiation or Krenning score)."
* #undetermined "Eligibility undetermined" "A criterion cannot be evaluated because the form lacks the data (grade or Krenning score)."

CodeSystem: ObservationCodesCS
Id: observation-codes
Title: "fhirnet observation and component codes"
Description: "Codes for what fhirnet writes where no standard code (LOINC, SNOMED CT, NCIt/CDISC, DICOM) was found. Standard codes are used everywhere else; see fsh/README.md."
* insert LocalCodeSystem
* #too-small-to-measure "Too small to measure" "The target lesion is faintly seen but too small to measure (RECIST 1.1 default value 5 mm)."
* #baseline-date "Baseline date" "Date of the baseline exam the response is measured against."
* #baseline-sum-of-diameters "Baseline sum of diameters" "Sum of diameters of the target lesions at baseline."
* #nadir-sum-of-diameters "Nadir sum of diameters" "Smallest sum of diameters at the baseline or an earlier follow-up (the current exam excluded)."
* #nadir-date "Nadir date" "Date of the exam with the nadir sum of diameters."
* #mean-density "Mean target-lesion density" "Arithmetic mean of the CT density of the measured target lesions (Choi)."
* #density-change-from-baseline "Percent change of mean density from baseline" "Percent change of the mean target-lesion density from baseline (Choi)."
* #baseline-target-sul-peak "Baseline hottest-lesion SULpeak" "SULpeak of the hottest target lesion at baseline (PERCIST)."
* #sul-peak-change-percent "Percent change of hottest-lesion SULpeak" "Percent change of the hottest target-lesion SULpeak from baseline (PERCIST)."
* #sul-peak-change-absolute "Absolute change of hottest-lesion SULpeak" "Follow-up minus baseline hottest target-lesion SULpeak (PERCIST)."
* #measurability-threshold "PERCIST measurability threshold" "Minimum measurable SULpeak of this scan: 1.5 x liver SULmean + 2 SD, or 2.0 x blood-pool SULmean + 2 SD."
* #new-lesion-sum-of-diameters "Sum of diameters of new-lesion targets" "Sum of the diameters of the new measurable lesions (iRECIST new-lesion targets); never added to the target sum."
* #confirmation-of "Confirmation of iUPD dated" "Date of the iUPD timepoint that this iCPD confirms (iRECIST)."
* #tumor-growth-rate-pre-treatment "Tumour growth rate before treatment" "Tumour growth rate from the latest pre-baseline scan to the baseline, percent per month (Ferte 2014: 100 x (exp(3 ln(D2/D1) / months) - 1))."
* #tumor-growth-rate-on-treatment "Tumour growth rate on treatment" "Tumour growth rate from the baseline to the first follow-up, percent per month (Ferte 2014)."
* #tumor-growth-rate-ratio "Tumour growth rate ratio" "On-treatment tumour growth rate divided by the pre-treatment one (when the latter is above 0)."
* #hyperprogression "Hyperprogression" "Progression at the first follow-up with a tumour growth rate ratio of at least 2 (Champiat 2017)."
* #reader-response-vs-baseline "Reader's response versus baseline" "The response category the reader gave on the form, compared with baseline."
* #reader-response-vs-nadir "Reader's response versus nadir" "The response category the reader gave on the form, compared with the nadir."
* #reader-discordant "Reader discordant" "True when a response category given by the reader differs from the one fhirnet computed."
* #embryologic-origin "Embryologic origin" "Embryologic origin (foregut, midgut, hindgut) of the primary tumour."
* #differentiation "Differentiation" "Histological differentiation of the neuroendocrine neoplasm."
* #mitotic-count "Mitotic count" "Mitoses per 2 mm² (WHO 2019 grading)."
* #krenning-score "Krenning score" "Somatostatin-receptor uptake grade 0-4 (Krenning)."
* #prrt-eligibility "PRRT eligibility" "Result of the PRRT eligibility screen."
* #imaging-recommendation "Imaging recommendation" "Imaging modalities recommended for this patient (seed Table 2 and section I)."
* #recommended-first "Recommended first" "Modality recommended first."
* #recommended-second "Recommended second" "Modality recommended when the first one is not available or is negative."
* #recommended-consider "To consider" "Additional modality to consider."
