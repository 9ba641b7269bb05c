"""mlspec compile: spec + git facts -> plan -> rendered files -> written (docs/DESIGN.md §4)."""
