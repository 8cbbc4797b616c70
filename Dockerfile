FROM python:3.11-slim
WORKDIR /app
# The runtime only: tests, benchmarks and lint tools are in requirements-dev.txt.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PYTHONUNBUFFERED=1
# uvicorn trusts X-Forwarded-For/-Proto only from these addresses (its own default would be
# 127.0.0.1): none unless the deployment names its proxies (see README, Configuration).
ENV FORWARDED_ALLOW_IPS=""
EXPOSE 8000 8100
CMD ["uvicorn", "pelcro_gateway.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "20"]
