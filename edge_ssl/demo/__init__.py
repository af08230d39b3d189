"""The end-to-end demo: resumable stages from the synthetic world to the few-shot report."""
