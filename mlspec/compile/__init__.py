"""mlspec compile: spec + git facts -> plan -> rendered files -> written (DESIGN.md §4)."""
