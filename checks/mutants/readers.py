"""Planted errors in what readers get: the notebook edition, the course map, the figures,
the bibliography."""
from mutation import Mutant

MUTANTS = [
    Mutant("the student notebooks keep their solutions", "_ext/notebook_edition.py",
           "        if ctx.student:\n            return \"\"", "        if False:\n            return \"\"",
           ("checks/test_notebook_edition.py::test_the_student_variant_has_no_solution[03_equivalence.ipynb]",)),
    Mutant("citations in the notebooks left as keys", "_ext/notebook_edition.py",
           'if name.startswith("cite"):', 'if name.startswith("citation"):',
           ("checks/test_notebook_edition.py::test_citations_and_references_read_as_text",)),
    Mutant("a course-map step omits a prerequisite", "book/course.md",
           "  - steps 4, 6 and 10", "  - steps 6 and 9",
           ("tests/test_course_map.py::test_the_learning_path_is_true",)),
    Mutant("legends drawn on the data", "compattn/plots.py",
           "bbox_to_anchor=(1.01, 1.0)", "bbox_to_anchor=(0.6, 1.0)",
           ("tests/test_figures.py::test_a_figure_reads_on_a_phone[kernels-4]",)),
    Mutant("a reference without its link", "book/references.bib",
           "url       = {https://arxiv.org/abs/1901.10430}", "note      = {https://arxiv.org/abs/1901.10430}",
           ("tests/test_project_files.py::test_every_reference_has_a_doi_or_a_url",)),
    Mutant("a convolution's reach renormalises its edge rows", "compattn/plots.py",
           "        return kernel_band(taps / taps.sum(), seq_len)",
           "        band = kernel_band(taps / taps.sum(), seq_len)\n"
           "        return band / band.sum(1, keepdims=True)",
           ("tests/test_kernel_reach.py::test_a_lightconv_kernel_placed_by_the_book_is_the_mixers_own_matrix",
            "tests/test_kernel_reach.py::test_an_edge_row_loses_exactly_the_taps_outside_the_sequence")),
]
