"""FundGuard: screening medical-insurance (医保) claims for fraud, waste and abuse."""

__version__ = "0.1.0"
