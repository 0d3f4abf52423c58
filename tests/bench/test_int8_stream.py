from models.quantize import is_increment, stream_points


def test_the_increments_are_the_blocks_second_convolutions() -> None:
    # The "but increments" builds leave exactly these on NNCF's min/max range.
    increments = [source for source in stream_points(4) if is_increment(source)]
    assert increments == [f"__module.body.{block}.conv2/aten::_convolution/Add" for block in range(4)]
