# The KIS simulator as a container (optional; `pipx run --spec "kis-async[sim]" kis-async sim`
# needs no Docker). It listens on all interfaces inside the container: publish the port only on
# a private network. Build and run:
#   docker build -t kis-sim .
#   docker run --rm -p 8080:8080 kis-sim                  # paper mode, seed 1234
#   docker run --rm -p 8080:8080 kis-sim --mode live --layout legacy
# The printed KIS_REST_URL / KIS_WS_URL name 0.0.0.0; use the published host and port instead.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kis_async ./kis_async
RUN pip install --no-cache-dir ".[sim]" && rm -rf /src
# docker-compose.yml has the simulator write its credentials to a volume at /shared
# (--env-file); a named volume takes the ownership of the directory it is mounted on.
RUN mkdir /shared && chown nobody /shared
WORKDIR /
USER nobody
EXPOSE 8080
ENTRYPOINT ["kis-async", "sim", "--host", "0.0.0.0", "--port", "8080"]
