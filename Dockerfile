FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PYTHONUNBUFFERED=1
EXPOSE 8000 8100
CMD ["uvicorn", "pelcro_gateway.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
