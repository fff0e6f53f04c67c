"""Planted errors in Part I's derivations (``compattn/symbolic.py``) and its heat maps
(``plots.plot_matrices``): each must fail the Part I tests named with it (narrow node ids:
CI runs every mutant)."""
from mutation import Mutant

SYMBOLIC = "compattn/symbolic.py"
PART_ONE = "tests/test_part_one.py"
SYMBOLIC_TESTS = "tests/test_symbolic.py"

MUTANTS = [
    Mutant("Step 3: interior row off by one", SYMBOLIC,
           "interior = case(ell - 1 + n1, ell - 1 + n2, ell, [1 - ell, ell], [])",
           "interior = case(ell - 2 + n1, ell - 1 + n2, ell, [1 - ell, ell], [])",
           (f"{PART_ONE}::test_step3_interior_rows_are_wu_and_no_other_row_is",)),
    Mutant("Step 3: Wu's window 2l+1 wide instead of 2l-1", SYMBOLIC,
           "wu_pieces = split_sum(sp.exp(beta_(r_)), r_, 1 - ell, ell - 1,",
           "wu_pieces = split_sum(sp.exp(beta_(r_)), r_, -ell, ell,",
           (f"{PART_ONE}::test_step3_interior_rows_are_wu_and_no_other_row_is",)),
    Mutant("Step 1: absolute index clip(j)", SYMBOLIC,
           "idx = clip_expr(j_ - i_, ell_)", "idx = clip_expr(j_, ell_)",
           (f"{PART_ONE}::test_step1_split_for_every_d_h_reads_the_table_at_the_offset",)),
    Mutant("ALiBi bias sign flipped", SYMBOLIC,
           "return -m * sp.Abs(j - i)", "return m * sp.Abs(j - i)",
           (f"{PART_ONE}::test_distance_penalties_decay_with_distance",
            f"{PART_ONE}::test_alibi_bias_is_the_librarys")),
    Mutant("KERPLE bias sign flipped", SYMBOLIC,
           "return -rho1 * sp.log(1 + rho2 * sp.Abs(j - i))",
           "return rho1 * sp.log(1 + rho2 * sp.Abs(j - i))",
           (f"{PART_ONE}::test_distance_penalties_decay_with_distance",
            f"{PART_ONE}::test_kerple_bias_is_the_librarys")),
    Mutant("Cordonnier quadratic score sign flipped", SYMBOLIC,
           "return -gamma * ((r - shift) ** 2 - shift ** 2)",
           "return gamma * ((r - shift) ** 2 - shift ** 2)",
           (f"{SYMBOLIC_TESTS}::test_quadratic_encoding_concentrates_on_the_shift",
            f"{PART_ONE}::test_attention_expresses_a_convolution_output")),
    Mutant("key-based term read at clip(j - i) (instance builder)", SYMBOLIC,
           "a[clip(i - j, ell)]", "a[clip(j - i, ell)]",
           (f"{SYMBOLIC_TESTS}::test_key_based_term_is_the_reversed_table_read_at_j_minus_i",
            f"{SYMBOLIC_TESTS}::test_symbolic_composite_terms_are_the_librarys")),
    Mutant("key-based term read at clip(j - i) (general proof)", SYMBOLIC,
           "fwd, back = clip_expr(j_ - i_, ell_), clip_expr(i_ - j_, ell_)",
           "fwd, back = clip_expr(j_ - i_, ell_), clip_expr(j_ - i_, ell_)",
           (f"{PART_ONE}::test_composite_and_transformer_xl_decompositions_for_every_d_h",)),
    Mutant("heat maps compared without a shared scale", "compattn/plots.py",
           "        groups = {label: names}", "        groups = {name: [name] for name in names}",
           (f"{PART_ONE}::test_heat_maps_have_colour_bars_axis_labels_and_shared_scales",)),
    Mutant("counterexample that never fails", SYMBOLIC,
           "assert best_size > margin, (", "assert best_size >= 0, (",
           (f"{SYMBOLIC_TESTS}::test_counterexample_demands_a_clear_non_zero_value",)),
]
