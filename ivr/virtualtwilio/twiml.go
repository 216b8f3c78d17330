package virtualtwilio

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Response is a parsed TwiML document: the verbs under <Response>, in order.
type Response struct {
	Verbs []*Node
}

// Node is an element of a TwiML document, or a text node (Name "") among an
// element's children.
type Node struct {
	Name     string            // element name as written ("Say", "say-as"); "" for text
	Attrs    map[string]string // attribute values by name ("xml:lang" for the xml namespace)
	Children []*Node           // child elements and text nodes, in document order
	// Text is the node's text with nested SSML flattened (say-as and prosody
	// text kept, a <break>, <s> or <p> boundary counting as a space) and whitespace runs collapsed
	// to one space. For a text node it is the raw text.
	Text string
}

// Attr returns the attribute's value, or "".
func (n *Node) Attr(name string) string { return n.Attrs[name] }

// Elements returns the child elements, without text nodes.
func (n *Node) Elements() []*Node {
	var out []*Node
	for _, c := range n.Children {
		if c.Name != "" {
			out = append(out, c)
		}
	}
	return out
}

// Find returns every element below n named name, depth first in document order.
func (n *Node) Find(name string) []*Node {
	var out []*Node
	for _, c := range n.Children {
		if c.Name == name {
			out = append(out, c)
		}
		out = append(out, c.Find(name)...)
	}
	return out
}

// Find returns every element of the document named name, depth first in
// document order.
func (r *Response) Find(name string) []*Node {
	root := &Node{Children: r.Verbs}
	return root.Find(name)
}

// Names returns the verbs' names in order.
func (r *Response) Names() []string {
	names := make([]string, len(r.Verbs))
	for i, v := range r.Verbs {
		names[i] = v.Name
	}
	return names
}

// ParseTwiML parses a TwiML document strictly (well-formed XML, root
// <Response>). Text directly under <Response> is ignored, as Twilio does.
func ParseTwiML(b []byte) (*Response, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	var stack []*Node
	var root *Node
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("virtualtwilio: parse twiml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &Node{Name: t.Name.Local, Attrs: map[string]string{}}
			for _, a := range t.Attr {
				k := a.Name.Local
				if a.Name.Space == "xml" || a.Name.Space == "http://www.w3.org/XML/1998/namespace" {
					k = "xml:" + k
				}
				n.Attrs[k] = a.Value
			}
			switch {
			case len(stack) > 0:
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, n)
			case root != nil:
				return nil, errors.New("virtualtwilio: parse twiml: more than one root element")
			case n.Name != "Response":
				return nil, fmt.Errorf("virtualtwilio: parse twiml: root element is <%s>, not <Response>", n.Name)
			default:
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 1 { // text under <Response> itself is ignored
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, &Node{Text: string(t)})
			} else if len(stack) == 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("virtualtwilio: parse twiml: text outside <Response>")
			}
		}
	}
	if root == nil {
		return nil, errors.New("virtualtwilio: parse twiml: no <Response>")
	}
	root.flatten()
	return &Response{Verbs: root.Elements()}, nil
}

// flatten fills Text of n and its descendants.
func (n *Node) flatten() {
	var b strings.Builder
	n.rawText(&b)
	n.Text = strings.Join(strings.Fields(b.String()), " ")
	for _, c := range n.Children {
		if c.Name != "" {
			c.flatten()
		}
	}
}

func (n *Node) rawText(b *strings.Builder) {
	for _, c := range n.Children {
		switch c.Name {
		case "":
			b.WriteString(c.Text)
		case "break":
			b.WriteString(" ")
		case "s", "p": // sentences and paragraphs are apart
			b.WriteString(" ")
			c.rawText(b)
			b.WriteString(" ")
		default:
			c.rawText(b)
		}
	}
}
