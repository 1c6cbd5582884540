"""Publishing the gated suspect list to gold, and reproducing a published run."""
