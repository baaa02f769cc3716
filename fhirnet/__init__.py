"""fhirnet: a FHIR data service for the GEP-NET imaging case-report form.

This module holds only the version, so that ``import fhirnet.criteria`` never pulls in Flask.
"""

__version__ = "0.1.0"
