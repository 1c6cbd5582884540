"""Entry points submitted to a Spark cluster (`spark-submit pipelines/jobs/<job>.py ...`)."""
