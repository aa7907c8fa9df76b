"""sigma-cli discovery of sentinel's processing pipeline (`sigma convert -p sentinel`).

pySigma registers the functions named in `pipelines` (or in `__all__`, with a
`ProcessingPipeline` return annotation) from the `sigma.pipelines` namespace package.
"""

from sentinel.detect.pipeline import sentinel_pipeline

pipelines = {"sentinel": sentinel_pipeline}

__all__ = ["sentinel_pipeline", "pipelines"]
