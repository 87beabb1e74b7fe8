"""A rig: many boards validated at once, their results kept, and labgrid for shared farms.

Owns: the rig file, a TOML list of boards by name (`rigfile`); finding plugged-in boards by
their USB ids (`discover`); where each board's port comes from: a serial device, a network
port, a virtual board started for the run, a labgrid place (`ports`, `labgrid`); building
once per profile and flashing in parallel (`firmware`); the run itself, every board in its own
thread with its own verdict (`run`); the SQLite results store beside the rig file (`store`);
the dashboard, JUnit file and a board's history read from the store (`report`).

May import: core, model, firmware, device, validation.
"""
