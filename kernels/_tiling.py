"""Work decomposition shared by the convolution kernels.

Band heights and chunk counts depend only on the problem shape, never on the
number of threads, so results are bit-for-bit identical at any thread count.
"""

from ._jit import inline_helper

#: Target elements per panel: 32768 float32 (128 KiB) or float64 (256 KiB)
#: leaves room in Zen 4's 1 MiB L2 for the weights and the output tile.
PANEL_ELEMENTS = 32768

#: Target elements of a task's channels-last input band.  A band covers
#: several panels' worth of output rows, so input rows shared by neighbouring
#: output rows (every row when R > stride) are transposed once, not R times.
BAND_ELEMENTS = 65536


#: Reduction axes are zero-padded to a multiple of this many elements (one
#: AVX-512 register of float32, two of float64) so the vectorised reduction
#: loop never falls into its scalar remainder.
VECTOR_PAD = 16


def padded(n):
    """``n`` rounded up to a multiple of :data:`VECTOR_PAD`."""
    return (n + VECTOR_PAD - 1) // VECTOR_PAD * VECTOR_PAD


def band_rows(P, Q, row_elements, budget=PANEL_ELEMENTS):
    """Output rows per task so a band's buffer holds about ``budget`` elements.

    Parameters
    ----------
    P, Q : int
        Output height and width.
    row_elements : int
        Buffer elements needed per output pixel.
    """
    return max(1, min(P, budget // max(Q * row_elements, 1)))


#: Fewest tasks a convolution is cut into when its output has the rows for
#: it, so a single image still spreads over the threads.  A constant, not the
#: thread count, so results do not depend on the thread count.
MIN_TASKS = 4


def task_rows(P, panel_rows, sh, span_h, cols_in, Cg, n_outer):
    """Output rows per task and per panel.

    Tasks get a multiple of ``panel_rows`` rows whose input band fits
    :data:`BAND_ELEMENTS`, and there are at least :data:`MIN_TASKS` tasks
    (counting the ``n_outer`` images x groups) when ``P`` allows.

    Parameters
    ----------
    P : int
        Output height.
    panel_rows : int
        Output rows per panel (from :func:`band_rows`).
    sh, span_h : int
        Vertical stride and dilated kernel height ``(R-1)*dh + 1``.
    cols_in, Cg : int
        Band width and channels.
    n_outer : int
        Images times groups: tasks per band row.

    Returns
    -------
    (rows, panel_rows) : (int, int)
    """
    per_row = max(cols_in * Cg, 1)
    rows_in = max(BAND_ELEMENTS // per_row, span_h)
    rows = (rows_in - span_h) // sh + 1
    rows = min(max(panel_rows, rows - rows % panel_rows), P)
    want_bands = -(-MIN_TASKS // max(n_outer, 1))
    if -(-P // rows) < want_bands:
        rows = max(1, -(-P // want_bands))
        panel_rows = min(panel_rows, rows)
    return rows, panel_rows


@inline_helper
def band_task(task, nb, G, B, P):
    """Image ``n``, group ``g``, first output row ``p0`` and row count of band task ``task``.

    Tasks run over (image, group, band of ``B`` output rows), bands fastest;
    ``nb = ceil(P / B)`` bands per image and group.
    """
    b = task % nb
    ng = task // nb
    p0 = b * B
    return ng // G, ng % G, p0, min(B, P - p0)
