"""Fixtures for the binding tests: a tiny rendered dataset shared by the session."""
import pytest

import libgaze


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    cfg = libgaze.config(synth__out_dir=str(root), synth__participants=3, synth__layouts=["openeds", "aea"],
                         synth__train_frames=8, synth__validation_frames=4, synth__test_frames=12,
                         synth__aea_frames=4, synth__openeds_size=[64, 96], synth__aea_size=[48, 128],
                         data__input_size=[32, 64], data__openeds_size=[64, 96], run__threads=2)
    libgaze.synth(cfg)
    return root, cfg
