#!/bin/sh
# MinIO setup, run by the PostSync hook Job after every sync of the store:
# the bucket, the API's policy (one bucket, object verbs only) and its user.
# Every step is idempotent. Credentials come from mounted files, never argv.
set -eu
creds=/var/run/secrets/minio
export MC_CONFIG_DIR=/tmp/mc
# `read` rather than cat/grep: the mc image is a minimal one.
read -r root_user <"$creds/MINIO_ROOT_USER"
read -r root_password <"$creds/MINIO_ROOT_PASSWORD"
read -r app_key <"$creds/S3_ACCESS_KEY_ID"
read -r app_secret <"$creds/S3_SECRET_ACCESS_KEY"

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
info=$(mc admin user info store "$app_key")
case $info in
*glasgow-api*) ;;
*)
    echo "minio-setup: policy glasgow-api not attached to the API user" >&2
    exit 1
    ;;
esac
echo "minio-setup: bucket glasgow, policy glasgow-api, API user ready"
