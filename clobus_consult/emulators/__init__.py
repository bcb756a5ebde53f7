"""Local stand-ins for Chatwoot and 1C:ЦЛ OData, built to ../shared/spec. Used by the tests and by anyone
trying the service without the real systems."""
