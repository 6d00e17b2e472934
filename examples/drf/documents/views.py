from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated

from mqlock.django.fencing import FencedSaveMixin
from mqlock.django.permissions import HoldsEditLock

from .models import Document
from .serializers import DocumentSerializer


class DocumentViewSet(FencedSaveMixin, viewsets.ModelViewSet):
    """/api/documents/: reads for every logged-in user; PUT, PATCH and
    DELETE only from the holder of the document's lock, with its token in
    X-Mqlock-Token, and fenced in the database."""

    queryset = Document.objects.all()
    serializer_class = DocumentSerializer
    permission_classes = [IsAuthenticated, HoldsEditLock]

    def perform_update(self, serializer):
        self.fenced_save(serializer, updated_by=self.request.user)


@login_required
def document_list(request):
    return render(request, "documents/list.html", {"documents": Document.objects.all()})


@login_required
def document_edit(request, pk):
    document = get_object_or_404(Document, pk=pk)
    return render(request, "documents/edit.html", {"document": document})
