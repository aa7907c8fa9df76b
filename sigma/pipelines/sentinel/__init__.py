"""sigma-cli discovery of sentinel's processing pipeline (`sigma convert -p sentinel`).

pySigma registers the functions named in `pipelines` (or in `__all__`, with a
`ProcessingPipeline` return annotation) from the `sigma.pipelines` namespace package. It
reads that annotation with `typing.get_type_hints`, so the function given is the builder
itself (`sentinel.detect.transforms`, which imports pySigma; a scan without pySigma
imports only the taxonomy in `sentinel.detect.pipeline`).
"""

from sentinel.detect.transforms import build_pipeline as sentinel_pipeline

pipelines = {"sentinel": sentinel_pipeline}

__all__ = ["sentinel_pipeline", "pipelines"]
