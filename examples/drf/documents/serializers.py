from rest_framework import serializers

from .models import Document


class DocumentSerializer(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Document
        fields = ["id", "title", "body", "updated_at", "updated_by", "mqlock_token"]
        read_only_fields = ["updated_at", "updated_by", "mqlock_token"]
