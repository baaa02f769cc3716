"""FHIR mapping without network: conformance resources, validation and OperationOutcomes.

Modules here may import ``fhirnet.criteria`` and fhir.resources (through ``resources.py``), never
Flask or requests. Absolute imports only: ``fhir`` is also the namespace of fhir.resources.
"""
