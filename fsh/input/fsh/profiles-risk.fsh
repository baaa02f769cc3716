// Observations derived from the risk-stratification group (section I and V of the review).

Profile: WhoGrade
Parent: Observation
Id: who-grade
Title: "WHO grade"
Description: "WHO 2019 grade of the GEP neuroendocrine neoplasm (G1, G2, G3 NET, G3 NEC) derived from Ki-67, mitotic count and differentiation. Code NCIt C18000 'Histologic Grade', as mCODE STU4 HistologicGrade. Method NCIt C189619 'IARC and WHO Classification of Tumors of Neuroendocrine Neoplasms 2018': the common IARC/WHO framework of 2018 (Rindi et al., Mod Pathol 2018) that the WHO Classification of Digestive System Tumours, 5th edition (2019) applies to GEP neoplasms with the same criteria (well/poorly differentiated; Ki-67 < 3 %, 3-20 %, > 20 %; mitoses < 2, 2-20, > 20 per 2 mm²); no code for the 2019 digestive-system edition itself was found (CDISC SDTM CT 2025-03-28). mCODE binds HistologicGrade.method extensibly to HistologicGradingSystemVS (SNOMED CT descendants of 277457005 'Histological grading systems'); no SNOMED CT grading system for neuroendocrine neoplasms was found in the sources checked, so the NCIt code stands. Not an mCODE HistologicGrade: that profile derives from US Core Observation Lab (laboratory category, specimen) and fhirnet derives the grade from the imaging form, so the alignment is by code only. ConceptMap who-net-grade-to-histologic-grade gives the mCODE HistologicGradeVS (SNOMED CT) equivalents. Value absent (dataAbsentReason) when the inputs do not allow a grade."
* insert ProfileMetadata
* insert DerivedObservation
* obeys fhirnet-value-or-absent
* code = $NCIT#C18000
* code MS
* method 1..1 MS
* method = $NCIT#C189619
* method ^short = "NCIt C189619 IARC and WHO Classification of Tumors of Neuroendocrine Neoplasms 2018 (the grading criteria of WHO 2019)"
* value[x] MS
* value[x] only CodeableConcept
* valueCodeableConcept from WhoNetGradeVS (required)
* dataAbsentReason MS
* derivedFrom only Reference(QuestionnaireResponse)
* insert Reasons
* insert NotUsed(hasMember)
* insert ComponentSlicing
* component MS
* component contains ki67 0..1 MS and mitoticCount 0..1 MS and differentiation 0..1 MS
* component[ki67] ^short = "Ki-67 index, % (CRF ki67)"
* component[ki67].code = $NCIT#C123557
* insert QuantityComponent(ki67, %)
* component[mitoticCount] ^short = "Mitoses per 2 mm² (CRF mitotic-count)"
* component[mitoticCount].code = $obs#mitotic-count
* insert QuantityComponent(mitoticCount, "/(2.mm2\)")
* component[differentiation] ^short = "Differentiation (CRF differentiation)"
* component[differentiation].code = $obs#differentiation
* insert CodedComponent(differentiation, DifferentiationVS)

Profile: EmbryologicOrigin
Parent: Observation
Id: embryologic-origin
Title: "Embryologic origin"
Description: "Embryologic origin (foregut, midgut, hindgut) derived from the primary site with ConceptMap primary-site-to-embryologic-origin. The primary site is the bodySite. Value absent (dataAbsentReason) for an unknown primary or an unspecified colon segment."
* insert ProfileMetadata
* insert DerivedObservation
* obeys fhirnet-value-or-absent
* code = $obs#embryologic-origin
* code MS
* value[x] MS
* value[x] only CodeableConcept
* valueCodeableConcept from EmbryologicOriginVS (required)
* dataAbsentReason MS
* bodySite 1..1 MS
* bodySite from PrimarySiteVS (required)
* bodySite ^short = "CRF primary-site (a SNOMED CT coding from ConceptMap primary-site-to-snomed may be added)"
* derivedFrom only Reference(QuestionnaireResponse)
* insert NotUsed(hasMember)
* insert NotUsed(component)

Profile: PrrtEligibility
Parent: Observation
Id: prrt-eligibility
Title: "PRRT eligibility screen"
Description: "fhirnet's PRRT eligibility screen (section V of the review): eligible when the NET is well differentiated, G1 or G2, and the Krenning score is greater than 2. The inputs are components, the reasons are notes."
* insert ProfileMetadata
* insert DerivedObservation
* code = $obs#prrt-eligibility
* code MS
* value[x] 1..1 MS
* value[x] only CodeableConcept
* valueCodeableConcept from PrrtEligibilityVS (required)
* derivedFrom only Reference(QuestionnaireResponse or WhoGrade)
* insert Reasons
* insert NotUsed(hasMember)
* insert ComponentSlicing
* component MS
* component contains krenningScore 0..1 MS and whoGrade 0..1 MS and differentiation 0..1 MS
* component[krenningScore] ^short = "Krenning score (CRF krenning-score)"
* component[krenningScore].code = $obs#krenning-score
* insert CodedComponent(krenningScore, KrenningScoreVS)
* component[whoGrade] ^short = "WHO grade the screen used"
* component[whoGrade].code = $NCIT#C18000
* insert CodedComponent(whoGrade, WhoNetGradeVS)
* component[differentiation] ^short = "Differentiation (CRF differentiation)"
* component[differentiation].code = $obs#differentiation
* insert CodedComponent(differentiation, DifferentiationVS)

Profile: ImagingRecommendation
Parent: Observation
Id: imaging-recommendation
Title: "Imaging recommendation"
Description: "Imaging modalities recommended for the patient from the embryologic origin, differentiation, Ki-67 and syndrome (seed Table 2 and section I): e.g. foregut: SSTR PET first, DOPA PET second; midgut: DOPA PET first, SSTR PET second; poorly differentiated: FDG PET; Ki-67 >= 10 %: consider FDG PET. Each recommended modality is a component whose code gives its rank; the rules that fired are the notes."
* insert ProfileMetadata
* insert DerivedObservation
* code = $obs#imaging-recommendation
* code MS
* derivedFrom only Reference(QuestionnaireResponse or EmbryologicOrigin or WhoGrade)
* insert Reasons
* insert NotUsed(value[x])
* insert NotUsed(hasMember)
* insert ComponentSlicing
* component 1..* MS
* component contains recommendedFirst 0..* MS and recommendedSecond 0..* MS and toConsider 0..* MS
* component[recommendedFirst] ^short = "Modality recommended first"
* component[recommendedFirst].code = $obs#recommended-first
* insert CodedComponent(recommendedFirst, ImagingProcedureVS)
* component[recommendedSecond] ^short = "Modality recommended second"
* component[recommendedSecond].code = $obs#recommended-second
* insert CodedComponent(recommendedSecond, ImagingProcedureVS)
* component[toConsider] ^short = "Additional modality to consider"
* component[toConsider].code = $obs#recommended-consider
* insert CodedComponent(toConsider, ImagingProcedureVS)
