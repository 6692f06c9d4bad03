"""Random affine augmentation of normalised batches: blank areas stay blank; it equals augmenting first."""

import torch
from test_mnist import FAST_FIT, record_training_batches, rows

from mnistlab.data.augment import random_affine

AFFINE = {"max_rotation": 15.0, "max_shift": 0.1, "max_scale": 0.1}
MEAN, STD = 0.1307, 0.3081


def digits(n: int = 16) -> torch.Tensor:
    """Pixels in [0, 1] on a zero background, with a bright square off-centre."""
    images = torch.zeros(n, 1, 28, 28)
    images[:, :, 6:18, 9:20] = torch.rand(n, 1, 12, 11)
    return images


def test_a_blank_image_stays_blank_in_normalised_space():
    blank = torch.full((8, 1, 28, 28), -MEAN / STD)
    torch.manual_seed(0)
    out = random_affine(blank, **AFFINE, background=-MEAN / STD)
    assert torch.allclose(out, blank, atol=1e-6)


def test_augmenting_normalised_images_equals_normalising_augmented_ones():
    images = digits()
    torch.manual_seed(1)
    augmented_first = (random_affine(images, **AFFINE) - MEAN) / STD
    torch.manual_seed(1)
    normalised_first = random_affine((images - MEAN) / STD, **AFFINE, background=-MEAN / STD)
    assert torch.allclose(normalised_first, augmented_first, atol=1e-5)
    assert not torch.allclose(normalised_first, (images - MEAN) / STD, atol=1e-2)  # it did move them


def test_a_flip_mirrors_about_half_the_images_and_leaves_the_others_as_they_are():
    images = digits(200)
    torch.manual_seed(2)
    out = random_affine(images, horizontal_flip=True)
    mirrored = torch.isclose(out, images.flip(-1), atol=1e-5).flatten(1).all(dim=1)
    unchanged = torch.isclose(out, images, atol=1e-5).flatten(1).all(dim=1)
    assert (mirrored ^ unchanged).all()  # each image one or the other (the square is off-centre)
    assert 70 < mirrored.sum() < 130


def test_without_a_flip_no_image_is_mirrored():
    images = digits(200)
    torch.manual_seed(3)
    out = random_affine(images, max_shift=0.0, horizontal_flip=False)
    assert torch.allclose(out, images, atol=1e-5)


def test_fashion_mnist_is_augmented_for_clothes_and_digits_are_never_mirrored(compose_cfg):
    fashion = compose_cfg("data=fashion_mnist").data.augment
    assert fashion.horizontal_flip and fashion.max_rotation == 0 and fashion.max_shift > 0
    for digits_like in ("mnist", "kmnist"):
        augment = compose_cfg(f"data={digits_like}").data.augment
        assert not augment.horizontal_flip and augment.max_rotation > 0


def test_training_batches_are_augmented_and_validation_left_alone(compose_cfg):
    # Validation on (FAST_FIT turns it off): what the model receives there is recorded too.
    fit = [
        override
        for override in FAST_FIT
        if override not in ("data/augment=none", "+trainer.limit_val_batches=0")
    ]
    recorder, dm = record_training_batches(compose_cfg(*fit, "data/augment=affine", "trainer.max_epochs=1"))
    seen = recorder.epochs[0]
    assert len(seen) == len(dm.train_set)
    assert not set(seen) & set(rows(dm.train_set.inputs))  # every training image distorted
    assert recorder.validation == rows(dm.val_set.inputs)  # every validation image as it is, in order
