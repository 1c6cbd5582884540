"""Export one institution's audit package (机构疑点包) from gold/suspects, and verify one."""
from pipelines.export.package import (  # noqa: F401
    FEEDBACK_COLUMNS, ExportError, build_package, check_institution, period_months,
    verify_manifest, write_package,
)
