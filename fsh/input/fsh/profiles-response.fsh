// Response assessment and the mCODE-style disease status derived from it.

Invariant: fhirnet-recist-categories
Description: "A RECIST 1.1 assessment uses RECIST 1.1 overall categories (CR, PR, SD, PD, NE, NON-CR/NON-PD)."
Expression: "method.coding.where(system = 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl' and code = 'C124415').exists() implies value.ofType(CodeableConcept).coding.where(system = 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl').all(code in ('C4870' | 'C18058' | 'C18213' | 'C35571' | 'C62222' | 'C96700'))"
Severity: #error

Invariant: fhirnet-irecist-categories
Description: "An iRECIST assessment uses iRECIST overall categories (iCR, iPR, iSD, iUPD, iCPD, NE, NON-iCR/NON-iUPD)."
Expression: "method.coding.where(system = 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl' and code = 'C136711').exists() implies value.ofType(CodeableConcept).coding.where(system = 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl').all(code in ('C142357' | 'C142358' | 'C142359' | 'C142360' | 'C142356' | 'C62222' | 'C142361'))"
Severity: #error

Invariant: fhirnet-choi-categories
Description: "A Choi assessment uses Choi overall categories (CR, PR, SD, PD, NE)."
Expression: "method.coding.where(system = 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl' and code = 'C122394').exists() implies value.ofType(CodeableConcept).coding.where(system = 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl').all(code in ('C4870' | 'C18058' | 'C18213' | 'C35571' | 'C62222'))"
Severity: #error

Invariant: fhirnet-percist-categories
Description: "A PERCIST 1.0 assessment uses PERCIST overall categories (CMR, PMR, SMD, PMD, NE)."
Expression: "method.coding.where(system = 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl' and code = 'C126039').exists() implies value.ofType(CodeableConcept).coding.where(system = 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl').all(code in ('C123407' | 'C123609' | 'C123616' | 'C123608' | 'C62222'))"
Severity: #error

Profile: ResponseAssessment
Parent: Observation
Id: response-assessment
Title: "Response assessment"
Description: "fhirnet's overall timepoint response at one follow-up exam under the chosen criteria (RECIST 1.1, iRECIST, Choi or PERCIST 1.0), with the figures of the assessment API as components and the reasons as notes. Code: CDISC OVRLRESP 'Overall Response' (NCIt C96613); method: the criteria (CDISC codelist C124298); value: the category (CDISC codelist C96785), restricted per criteria by invariants. mCODE has no response-criteria profile; the mCODE disease status is a separate Observation (cancer-disease-status) derived from this one."
* insert ProfileMetadata
* insert DerivedObservation
* insert ImagingCategory
* obeys fhirnet-recist-categories and fhirnet-irecist-categories and fhirnet-choi-categories and fhirnet-percist-categories
* code = $NCIT#C96613
* code MS
* method 1..1 MS
* method from ResponseCriteriaVS (required)
* method ^short = "The response criteria (CRF response-criteria)"
* value[x] 1..1 MS
* value[x] only CodeableConcept
* valueCodeableConcept from ResponseCategoryVS (required)
* value[x] ^short = "Overall timepoint response (assessment API overallResponse)"
* derivedFrom only Reference(QuestionnaireResponse or Observation)
* derivedFrom ^comment = "The QuestionnaireResponse of this exam, the sum-of-diameters and lesion-measurement Observations of this exam, and those of the baseline and nadir exams the figures are compared with."
* focus MS
* focus only Reference(Condition)
* focus ^short = "The cancer condition assessed, when known"
* insert Reasons
* insert NotUsed(hasMember)
* insert ComponentSlicing
* component MS
* component contains
    targetResponse 0..1 MS and
    nonTargetResponse 0..1 MS and
    newLesions 1..1 MS and
    baselineDate 0..1 MS and
    baselineSum 0..1 MS and
    nadirSum 0..1 MS and
    nadirDate 0..1 MS and
    changeFromBaseline 0..1 MS and
    changeFromNadir 0..1 MS and
    meanDensity 0..1 MS and
    densityChangeFromBaseline 0..1 MS and
    targetSulPeak 0..1 MS and
    baselineTargetSulPeak 0..1 MS and
    sulPeakChangePercent 0..1 MS and
    sulPeakChangeAbsolute 0..1 MS and
    measurabilityThreshold 0..1 MS and
    newLesionSum 0..1 MS and
    confirmationOf 0..1 MS and
    tgrPreTreatment 0..1 MS and
    tgrOnTreatment 0..1 MS and
    tgrRatio 0..1 MS and
    hyperprogression 0..1 MS and
    readerResponseVsBaseline 0..1 MS and
    readerResponseVsNadir 0..1 MS and
    readerDiscordant 0..1 MS
* component[targetResponse] ^short = "Target-lesion response (targetResponse); absent without target lesions"
* component[targetResponse].code = $NCIT#C94534
* insert CodedComponent(targetResponse, TargetResponseVS)
* component[nonTargetResponse] ^short = "Non-target-lesion response (nonTargetResponse); absent without non-target lesions"
* component[nonTargetResponse].code = $NCIT#C94535
* insert CodedComponent(nonTargetResponse, NonTargetResponseVS)
* component[newLesions] ^short = "A counted new lesion is listed at this exam (newLesions)"
* component[newLesions].code = $NCIT#C142362
* insert TypedComponent(newLesions, boolean)
* component[baselineDate] ^short = "Date of the baseline exam (baselineDate)"
* component[baselineDate].code = $obs#baseline-date
* insert TypedComponent(baselineDate, dateTime)
* component[baselineSum] ^short = "Baseline sum of diameters, mm (baselineSumMm)"
* component[baselineSum].code = $obs#baseline-sum-of-diameters
* insert QuantityComponent(baselineSum, mm)
* component[nadirSum] ^short = "Nadir sum of diameters, mm (nadirSumMm)"
* component[nadirSum].code = $obs#nadir-sum-of-diameters
* insert QuantityComponent(nadirSum, mm)
* component[nadirDate] ^short = "Date of the nadir exam (nadirDate)"
* component[nadirDate].code = $obs#nadir-date
* insert TypedComponent(nadirDate, dateTime)
* component[changeFromBaseline] ^short = "Percent change of the sum from baseline (changeFromBaselinePct)"
* component[changeFromBaseline].code = $NCIT#C112370
* insert QuantityComponent(changeFromBaseline, %)
* component[changeFromNadir] ^short = "Percent change of the sum from the nadir (changeFromNadirPct)"
* component[changeFromNadir].code = $NCIT#C112373
* insert QuantityComponent(changeFromNadir, %)
* component[meanDensity] ^short = "Choi: mean density of the measured target lesions, HU (meanDensityHu)"
* component[meanDensity].code = $obs#mean-density
* insert QuantityComponent(meanDensity, "[hnsf'U]")
* component[densityChangeFromBaseline] ^short = "Choi: percent change of mean density from baseline (densityChangeFromBaselinePct)"
* component[densityChangeFromBaseline].code = $obs#density-change-from-baseline
* insert QuantityComponent(densityChangeFromBaseline, %)
* component[targetSulPeak] ^short = "PERCIST: SULpeak of the hottest target lesion (targetSulPeak)"
* component[targetSulPeak].code = $NCIT#C181547
* insert QuantityComponent(targetSulPeak, g/ml{SUVlbm})
* component[baselineTargetSulPeak] ^short = "PERCIST: hottest SULpeak at baseline (baselineTargetSulPeak)"
* component[baselineTargetSulPeak].code = $obs#baseline-target-sul-peak
* insert QuantityComponent(baselineTargetSulPeak, g/ml{SUVlbm})
* component[sulPeakChangePercent] ^short = "PERCIST: percent change of the hottest SULpeak (sulPeakChangePct)"
* component[sulPeakChangePercent].code = $obs#sul-peak-change-percent
* insert QuantityComponent(sulPeakChangePercent, %)
* component[sulPeakChangeAbsolute] ^short = "PERCIST: follow-up minus baseline hottest SULpeak (sulPeakChangeAbs)"
* component[sulPeakChangeAbsolute].code = $obs#sul-peak-change-absolute
* insert QuantityComponent(sulPeakChangeAbsolute, g/ml{SUVlbm})
* component[measurabilityThreshold] ^short = "PERCIST: measurability threshold of this scan (measurabilityThreshold)"
* component[measurabilityThreshold].code = $obs#measurability-threshold
* insert QuantityComponent(measurabilityThreshold, g/ml{SUVlbm})
* component[newLesionSum] ^short = "iRECIST: sum of diameters of the new-lesion targets, mm (newLesionSumMm)"
* component[newLesionSum].code = $obs#new-lesion-sum-of-diameters
* insert QuantityComponent(newLesionSum, mm)
* component[confirmationOf] ^short = "iRECIST: date of the iUPD this iCPD confirms (confirmationOf)"
* component[confirmationOf].code = $obs#confirmation-of
* insert TypedComponent(confirmationOf, dateTime)
* component[tgrPreTreatment] ^short = "Tumour growth rate pre-baseline to baseline, %/month (tumorGrowthRate.preTreatmentPctPerMonth); only with a pre-baseline scan"
* component[tgrPreTreatment].code = $obs#tumor-growth-rate-pre-treatment
* insert QuantityComponent(tgrPreTreatment, %/mo)
* component[tgrOnTreatment] ^short = "Tumour growth rate baseline to first follow-up, %/month (tumorGrowthRate.onTreatmentPctPerMonth)"
* component[tgrOnTreatment].code = $obs#tumor-growth-rate-on-treatment
* insert QuantityComponent(tgrOnTreatment, %/mo)
* component[tgrRatio] ^short = "On-treatment / pre-treatment tumour growth rate (tumorGrowthRate.ratio)"
* component[tgrRatio].code = $obs#tumor-growth-rate-ratio
* insert QuantityComponent(tgrRatio, 1)
* component[hyperprogression] ^short = "Hyperprogression: progression at the first follow-up and TGR ratio >= 2 (tumorGrowthRate.hyperprogression); present whenever the patient has a pre-baseline scan"
* component[hyperprogression].code = $obs#hyperprogression
* insert TypedComponent(hyperprogression, boolean)
* component[readerResponseVsBaseline] ^short = "The reader's own category versus baseline (CRF response-vs-baseline)"
* component[readerResponseVsBaseline].code = $obs#reader-response-vs-baseline
* insert CodedComponent(readerResponseVsBaseline, ResponseCategoryVS)
* component[readerResponseVsNadir] ^short = "The reader's own category versus nadir (CRF response-vs-nadir)"
* component[readerResponseVsNadir].code = $obs#reader-response-vs-nadir
* insert CodedComponent(readerResponseVsNadir, ResponseCategoryVS)
* component[readerDiscordant] ^short = "True when a reader category differs from the computed one"
* component[readerDiscordant].code = $obs#reader-discordant
* insert TypedComponent(readerDiscordant, boolean)

Profile: CancerDiseaseStatus
Parent: Observation
Id: cancer-disease-status
Title: "Cancer disease status (mCODE-aligned)"
Description: "The trend of the cancer derived from a response assessment, structured to satisfy mCODE STU4 CancerDiseaseStatus (mcode-cancer-disease-status): code LOINC 97509-4, value from the four active codes of ConditionStatusTrendVS (improved, stable, worsened, undetermined) chosen with ConceptMap response-category-to-disease-status, specimen, device, referenceRange, hasMember and component not used. The profile derives from Observation and the package does not depend on mCODE, so fhirnet writes no mCODE extension: mCODE's optional evidenceType (http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-disease-status-evidence-type, SNOMED CT 363679005 'Imaging (procedure)') is left out, and the imaging basis is the observation-category imaging. A receiver that wants mCODE's evidence type may add it; fhirnet does not claim mcode-cancer-disease-status in meta.profile."
* insert ProfileMetadata
* insert DerivedObservation
* insert ImagingCategory
* code = $LNC#97509-4
* code MS
* value[x] 1..1 MS
* value[x] only CodeableConcept
* valueCodeableConcept from DiseaseStatusTrendVS (required)
* focus MS
* focus only Reference(Condition or Lesion)
* derivedFrom only Reference(ResponseAssessment or QuestionnaireResponse)
* derivedFrom ^comment = "SHALL include the response-assessment Observation the trend was mapped from."
* insert NotUsed(hasMember)
* insert NotUsed(component)
