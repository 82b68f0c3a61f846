"""One declaration per job type (`SPEC`), registered in `ai_worker.jobs`. Keep these modules light: handlers and
demo inputs are named by path or built inside functions, never imported here."""
