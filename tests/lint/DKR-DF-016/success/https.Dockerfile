FROM python:3.12
RUN pip install --no-cache-dir --index-url https://pypi.example.com/simple requests
