import pytest

from audit.intake.detectors import MtcnnDetector


@pytest.fixture(scope="session")
def mtcnn():
    return MtcnnDetector()
