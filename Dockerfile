FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir -e ".[s3]"
ENV DESIGNCLIP_DATA_ROOT=/data
ENTRYPOINT ["designclip"]
CMD ["demo"]
