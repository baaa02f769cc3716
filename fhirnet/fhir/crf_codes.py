"""The CRF's code tables: each coded answer of the form (``crf.md``) and the domain value it stands
for, in both directions — :mod:`fhirnet.fhir.extract` reads answers with them, and the builders of
what fhirnet writes (observations, report, risk Observations) code the domain's values with the
same codings, so the two directions cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from fhirnet.criteria import (
    Criteria,
    Men1Status,
    Modality,
    Response,
)
from fhirnet.fhir.datatypes import DATA_ABSENT_REASON, NCIT, V2_0136, Coding, project_system

__all__ = [
    "ASSESSMENT_TYPE_SYSTEM",
    "CRITERIA",
    "IMAGING_PROCEDURE_SYSTEM",
    "LESION_SITES",
    "MEN1",
    "MODALITIES",
    "NODAL_LOCATIONS",
    "RESPONSE_CATEGORIES",
    "AssessmentType",
]


class AssessmentType(StrEnum):
    """CRF ``assessment-type`` (CodeSystem ``assessment-type``).

    ``pre-baseline`` (crf.md v2) is a scan before treatment start: a timepoint with the role
    ``pre-baseline`` (``criteria.md`` §0, §7), used for the tumour growth rate and never assessed.
    """

    BASELINE = "baseline"
    FOLLOW_UP = "follow-up"
    PRE_BASELINE = "pre-baseline"


ASSESSMENT_TYPE_SYSTEM: Final = project_system("assessment-type")
IMAGING_PROCEDURE_SYSTEM: Final = project_system("imaging-procedure")

#: CRF ``response-criteria`` (ValueSet ``response-criteria``, NCIt) ⇄ the domain's criteria.
CRITERIA: Final[Mapping[Criteria, Coding]] = {
    Criteria.RECIST_1_1: Coding(
        system=NCIT,
        code="C124415",
        display="Response Evaluation Criteria in Solid Tumors Version 1.1",
    ),
    Criteria.IRECIST: Coding(
        system=NCIT,
        code="C136711",
        display="Immune-Modified Response Evaluation Criteria in Solid Tumors",
    ),
    Criteria.CHOI: Coding(
        system=NCIT,
        code="C122394",
        display="Choi Response Criteria in the Evaluation of Gastrointestinal Stromal Tumors",
    ),
    Criteria.PERCIST_1_0: Coding(
        system=NCIT, code="C126039", display="PET Response Criteria in Solid Tumors"
    ),
}


def _ncit(code: str, display: str) -> Coding:
    return Coding(system=NCIT, code=code, display=display)


#: Response categories (ValueSet ``response-category``: NCIt, the CDISC submission value, i.e. the
#: domain code, as each concept's designation) ⇄ the domain's :class:`Response`.
RESPONSE_CATEGORIES: Final[Mapping[Response, Coding]] = {
    Response.CR: _ncit("C4870", "Complete Remission"),
    Response.PR: _ncit("C18058", "Partial Remission"),
    Response.SD: _ncit("C18213", "Stable Disease"),
    Response.PD: _ncit("C35571", "Progressive Disease"),
    Response.NE: _ncit("C62222", "Unevaluable"),
    Response.NON_CR_NON_PD: _ncit("C96700", "Non Complete Response/Non Progressive Disease"),
    Response.ICR: _ncit("C142357", "iRECIST Complete Response"),
    Response.IPR: _ncit("C142358", "iRECIST Partial Response"),
    Response.ISD: _ncit("C142359", "iRECIST Stable Disease"),
    Response.IUPD: _ncit("C142360", "iRECIST Unconfirmed Progressive Disease"),
    Response.ICPD: _ncit("C142356", "iRECIST Confirmed Progressive Disease"),
    Response.NON_ICR_NON_IUPD: _ncit(
        "C142361", "Non iRECIST Complete Response-Non iRECIST Unconfirmed Progressive Disease"
    ),
    Response.CMR: _ncit("C123407", "Tumor Complete Metabolic Response"),
    Response.PMR: _ncit("C123609", "Partial Metabolic Response"),
    Response.SMD: _ncit("C123616", "Stable Metabolic Disease"),
    Response.PMD: _ncit("C123608", "Progressive Metabolic Disease"),
}


def _procedure(modality: Modality, display: str) -> Coding:
    return Coding(system=IMAGING_PROCEDURE_SYSTEM, code=modality.value, display=display)


#: CRF ``imaging-procedure`` and ``lesion-modality`` (CodeSystem ``imaging-procedure``, whose
#: codes are the API's modality values by design) ⇄ :class:`Modality`; ``US`` is API-only.
MODALITIES: Final[Mapping[Modality, Coding]] = {
    Modality.CT: _procedure(Modality.CT, "Contrast-enhanced CT"),
    Modality.MRI: _procedure(Modality.MRI, "Contrast-enhanced MRI"),
    Modality.SSTR_PET: _procedure(Modality.SSTR_PET, "SSTR PET"),
    Modality.SSTR_SPECT: _procedure(Modality.SSTR_SPECT, "SSTR scintigraphy / SPECT"),
    Modality.FDG_PET: _procedure(Modality.FDG_PET, "FDG PET"),
    Modality.DOPA_PET: _procedure(Modality.DOPA_PET, "DOPA PET"),
}

#: CRF ``lesion-location`` (ValueSet ``lesion-location``, 28 SNOMED CT body structures) → the
#: assessment API's ``site``: the display in lower case with hyphens, except that **every
#: lymph-node code is ``lymph-node``**, as in the JSON examples: lymph nodes are one organ
#: (``criteria.md`` §0 "Organ key" and D21). The site names the organ in the domain's reasons.
LESION_SITES: Final[Mapping[str, str]] = {
    "10200004": "liver",
    "15776009": "pancreas",
    "69695003": "stomach",
    "38848004": "duodenum",
    "21306003": "jejunum",
    "34516001": "ileum",
    "30315005": "small-intestine",
    "66754008": "appendix",
    "71854001": "colon",
    "34402009": "rectum",
    "59441001": "lymph-node",  # Lymph node
    "279795009": "lymph-node",  # Lymph node of mesentery
    "91394001": "lymph-node",  # Retroperitoneal lymph node
    "15425007": "peritoneum",
    "27398004": "omentum",
    "82849001": "retroperitoneum",
    "39607008": "lung",
    "3120008": "pleura",
    "272673000": "bone",
    "15497006": "ovary",
    "23451007": "adrenal-gland",
    "78961009": "spleen",
    "64033007": "kidney",
    "80891009": "heart",
    "12738006": "brain",
    "76752008": "breast",
    "39937001": "skin",
    "87784001": "soft-tissue",
}
#: The lymph-node locations: a lesion there is nodal when the form does not say (``lesion-nodal``
#: is required, so only a partly filled form lacks it).
NODAL_LOCATIONS: Final = frozenset(
    code for code, site in LESION_SITES.items() if site == "lymph-node"
)

#: CRF ``men1`` (ValueSet ``men1-status``) → :class:`Men1Status`.
MEN1: Final[Mapping[tuple[str, str], Men1Status]] = {
    (V2_0136, "Y"): Men1Status.YES,
    (V2_0136, "N"): Men1Status.NO,
    (DATA_ABSENT_REASON, "unknown"): Men1Status.UNKNOWN,
}
