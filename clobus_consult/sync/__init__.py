"""Pushing consultations to Chatwoot and 1C:ЦЛ, and pulling their status back."""
