#!/bin/sh
# MinIO setup, run by the PostSync hook Job after every sync of the store:
# the bucket, the API's policy (one bucket, object verbs only) and its user.
# Every step is idempotent. Credentials come from mounted files, never argv.
set -eu
creds=/var/run/secrets/minio
export MC_CONFIG_DIR=/tmp/mc
root_user=$(cat "$creds/MINIO_ROOT_USER")
root_password=$(cat "$creds/MINIO_ROOT_PASSWORD")
app_key=$(cat "$creds/S3_ACCESS_KEY_ID")
app_secret=$(cat "$creds/S3_SECRET_ACCESS_KEY")

i=0
until MC_HOST_store="http://$root_user:$root_password@minio:9000" mc ready store >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || { echo "minio-setup: MinIO not ready after 120 s" >&2; exit 1; }
    sleep 2
done
export MC_HOST_store="http://$root_user:$root_password@minio:9000"
mc mb --ignore-existing store/glasgow
mc anonymous set none store/glasgow
mc admin policy create store glasgow-api /etc/minio-setup/glasgow-policy.json
# user add on an existing user resets its secret to the current one (rotation)
mc admin user add store "$app_key" "$app_secret" >/dev/null
mc admin policy attach store glasgow-api --user "$app_key" >/dev/null 2>&1 || true
mc admin user info store "$app_key" | grep -q 'glasgow-api' || {
    echo "minio-setup: policy glasgow-api not attached to the API user" >&2
    exit 1
}
echo "minio-setup: bucket glasgow, policy glasgow-api, API user ready"
