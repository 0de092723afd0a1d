"""mbprof's vocabulary, torch-free: errors, records, units, parsing, interruptions.

Every other room imports from here; nothing here imports from another room."""
