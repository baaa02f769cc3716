"""Integration tests against a real FHIR R4 server process (``@pytest.mark.integration``)."""
