"""Work decomposition shared by the convolution kernels.

Tile sizes and chunk counts depend only on the problem shape, never on the
number of threads, so results are bit-for-bit identical at any thread count.
"""

#: Elements per panel: a panel of this many float64 values (256 KiB) fits in
#: Zen 4's 1 MiB L2 with room for the weights and the output tile.
PANEL_ELEMENTS = 32768

#: Upper bound on the per-chunk partial sums of the weight gradient.
MAX_CHUNKS = 8


def tile_pixels(n_pixels, reduction):
    """Number of output pixels per tile: a multiple of 4, at most ``n_pixels``.

    Parameters
    ----------
    n_pixels : int
        Output pixels per image plane (``P * Q``).
    reduction : int
        Panel row length (``C_per_group * R * S``).
    """
    t = max(16, PANEL_ELEMENTS // max(reduction, 1))
    t -= t % 4
    return max(1, min(n_pixels, t))


def n_tiles(n_pixels, tile):
    return (n_pixels + tile - 1) // tile
