"""Screening: the rule library (rules/) applied to silver tables on an engine, into staging/suspects."""
