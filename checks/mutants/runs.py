"""Planted errors in what keeps runs from being silently corrupted: content hashes, the folder
lock, atomic writes and leftovers (compattn/files.py), resumed curves and signals
(compattn/train.py), the evidence runner's refusals and workers, and the command line's checks."""
from mutation import Mutant

RUNS = "tests/test_runs.py::"
CLI = "tests/test_cli.py::"
ARGS = CLI + "test_argument_errors_are_one_line_and_write_nothing"
SIGTERM = ("checks/test_interrupted_runs.py::test_a_signal_stops_after_the_current_step_and_the_resumed_run_is_"
           "the_uninterrupted_one[15-143]")

MUTANTS = [
    # content hashes
    Mutant("checkpoint hash not checked on load", "compattn/train.py",
           'check_hash(found, content_hash(state), path, "checkpoint"',
           'check_hash(found, found, path, "checkpoint"',
           (RUNS + "test_a_changed_byte_in_the_weights_is_refused_naming_the_checkpoint",)),
    Mutant("checkpoint hash leaves the tensor bytes out", "compattn/files.py",
           "digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())", "pass",
           (RUNS + "test_a_changed_byte_in_the_weights_is_refused_naming_the_checkpoint",)),
    Mutant("record hash not checked on load", "compattn/records.py",
           'check_hash(record[HASH_KEY], json_hash(record), path, "record",',
           'check_hash(record[HASH_KEY], record[HASH_KEY], path, "record",',
           (RUNS + "test_a_changed_record_is_refused_and_one_without_a_hash_is_read_as_it_is",)),
    Mutant("a changed record is set aside and run again instead of refused", "compattn/sweep.py",
           'return "changed", str(err)', 'return "corrupt", str(err)',
           (RUNS + "test_a_changed_record_is_refused_and_one_without_a_hash_is_read_as_it_is",)),
    # the folder lock
    Mutant("the lock is shared, not exclusive", "compattn/files.py",
           "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)",
           (RUNS + "test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holders_lock_is_taken_over",)),
    Mutant("the stale-lock test inverted (a dead holder's lock counts as live)", "compattn/files.py",
           "stale = bool(previous)", 'stale = bool(previous) and pid_alive(previous.get("pid", 0))',
           (RUNS + "test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holders_lock_is_taken_over",)),
    Mutant("parallel workers do not join their parent's lock", "compattn/files.py",
           "_HELD[key] = _Held(None, token, os.getpid())", "pass",
           ("checks/test_evidence_run.py::test_run_evidence_resumes_meets_deadline_and_runs_two_at_once",)),
    # atomic writes and leftovers
    Mutant("a failed write leaves its temporary file", "compattn/files.py",
           "tmp.unlink(missing_ok=True)", "pass",
           (CLI + "test_a_full_disk_at_a_checkpoint_is_one_line_naming_the_space_and_leaves_no_temporary_file",)),
    Mutant("a full disk is a bare OSError", "compattn/files.py",
           "if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):", "if False:",
           (CLI + "test_a_full_disk_at_a_checkpoint_is_one_line_naming_the_space_and_leaves_no_temporary_file",)),
    Mutant("leftover test inverted (the temporary files of live writers removed)", "compattn/files.py",
           "int(found[1]) != os.getpid() and not pid_alive(int(found[1]))",
           "int(found[1]) != os.getpid() and pid_alive(int(found[1]))",
           (RUNS + "test_leftover_temporary_files_are_removed_by_the_next_writer",)),
    Mutant("a killed data check's folder is kept", "compattn/data/build.py",
           "if pid.isdigit() and not pid_alive(int(pid)):", "if pid.isdigit() and pid_alive(int(pid)):",
           (RUNS + "test_a_killed_data_check_leaves_nothing_behind_the_next_one",)),
    # resumed curves
    Mutant("the running loss is not saved", "compattn/train.py",
           '"history": history, "running": running,', '"history": history, "running": [],', (SIGTERM,)),
    Mutant("the running loss is not restored", "compattn/train.py",
           'state["history"], list(state.get("running", []))', 'state["history"], []', (SIGTERM,)),
    # the evidence runner
    Mutant("evidence re-runs a record made with other settings", "compattn/evidence.py",
           'if status == "other":', 'if status == "other" and False:',
           ("tests/test_evidence.py::test_a_record_made_with_other_settings_is_refused_as_a_sweep_refuses_it",)),
    Mutant("evidence does not lock its folder", "compattn/evidence.py",
           'with folder_lock(out, f"evidence ({profile})" if protocol == 2 else f"evidence v{protocol} ({profile})"):',
           'with folder_lock(out / f".elsewhere-{os.getpid()}", "evidence"):',
           ("checks/test_chaos.py::test_chaos_ends_with_every_record_correct_or_refused",)),
    Mutant("SIGTERM is not forwarded to the workers", "compattn/evidence.py",
           "os.kill(process.pid, signal.SIGTERM)", "pass",
           ("checks/test_evidence_run.py::test_sigterm_to_the_parent_of_parallel_workers_stops_them_cleanly_every_"
            "time",)),
    Mutant("workers do not watch their parent", "compattn/evidence.py",
           "os.kill(os.getpid(), signal.SIGTERM)", "return",
           ("checks/test_evidence_run.py::test_killing_the_parent_ends_its_workers",)),
    # the command line
    Mutant("--hours 0 accepted", "compattn/__main__.py",
           "HOURS = _number(float, 0.0, True,", "HOURS = _number(float, 0.0, False,",
           (ARGS + "[evidence --hours 0]",)),
    Mutant("nan and inf accepted as numbers", "compattn/__main__.py",
           "if not math.isfinite(value) or value < minimum", "if value < minimum",
           (ARGS + "[evidence --hours nan]",)),
    Mutant("argparse's errors are not one line", "compattn/__main__.py",
           "    def error(self, message):", "    def _error(self, message):",
           (ARGS + "[pretrain]",)),
    Mutant("evidence without --out for a profile with no folder", "compattn/__main__.py",
           "if args.out is None and args.profile not in EVIDENCE_DIRS:", "if False:",
           (CLI + "test_evidence_needs_out_for_other_profiles_and_an_unwritable_out_is_named",)),
    Mutant("evidence does not check that --out can be written", "compattn/__main__.py",
           "out = _writable_folder(args.out or evidence_dir(args.profile, protocol=args.protocol))",
           "out = args.out or evidence_dir(args.profile, protocol=args.protocol)",
           (CLI + "test_evidence_needs_out_for_other_profiles_and_an_unwritable_out_is_named",)),
]
